//! What every front end (REST, WebDAV, S3) and the router parse the same way, each once:
//! Basic credentials, HTTP dates, `<bucket>.<domain>` hosts, Content-MD5, the conditional
//! headers, and the slot through which a front end tells the access log who acted.
//! No rule lives here: only the reading of HTTP; what a request may do is the core's.

mod conditional;
mod credentials;
mod dates;
mod host;
mod principal;

pub use conditional::{Preconditions, Refused, if_range_holds, write_conditions};
pub use credentials::{content_md5, parse_basic};
pub use dates::{fmt_http_date, http_date, nanos, parse_http_date, system_time};
pub use host::{strip_port, virtual_host_bucket};
pub use principal::{PrincipalSlot, Slot, acted_as, take_acted_as};
