//! Who a request acted as, carried to the access log: each front end leaves the
//! `Principal` in the response's extensions ([`acted_as`]), and the router reads it from
//! there. A front end that authenticates deep inside a framework (an axum extractor, an s3s
//! operation) cannot reach the response: it fills a slot the request carries instead.

use std::sync::{Arc, Mutex, PoisonError};

use davit_storage::Principal;
use http::Extensions;

/// A place in a request's extensions for a value found while serving it (the principal),
/// moved into the response once the response is there.
#[derive(Clone)]
pub struct Slot<T>(Arc<Mutex<Option<T>>>);

/// The slot for who the request acted as.
pub type PrincipalSlot = Slot<Principal>;

impl<T: Clone + Send + Sync + 'static> Slot<T> {
    /// Puts an empty slot in the request's extensions and returns it.
    pub fn install(request: &mut Extensions) -> Slot<T> {
        let slot = Slot(Arc::new(Mutex::new(None)));
        request.insert(slot.clone());
        slot
    }

    /// Records the value in the slot the request carries, if it carries one.
    pub fn fill(request: &Extensions, value: &T) {
        if let Some(slot) = request.get::<Slot<T>>() {
            // A poisoned slot still holds a whole Option: a panic cannot leave it half-set.
            *slot.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(value.clone());
        }
    }

    /// Moves what the slot holds into the response's extensions.
    pub fn hand_over(&self, response: &mut Extensions) {
        if let Some(v) = self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            response.insert(v);
        }
    }
}

/// Marks a response as acted on by `p`, for the access log.
pub fn acted_as(response: &mut Extensions, p: Principal) {
    response.insert(p);
}

/// Who a response was acted on by, taken out (to move it onto another response).
pub fn take_acted_as(response: &mut Extensions) -> Option<Principal> {
    response.remove::<Principal>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Who(&'static str);

    #[test]
    fn a_slot_carries_what_the_request_found_to_the_response() {
        let mut request = Extensions::new();
        let slot = Slot::<Who>::install(&mut request);
        Slot::fill(&request, &Who("alice"));
        let mut response = Extensions::new();
        slot.hand_over(&mut response);
        assert_eq!(response.get::<Who>(), Some(&Who("alice")));
        // Emptied: a second hand-over adds nothing.
        let mut again = Extensions::new();
        slot.hand_over(&mut again);
        assert!(again.get::<Who>().is_none());
        // A request without a slot (a route that never authenticates) is left alone.
        let bare = Extensions::new();
        Slot::fill(&bare, &Who("bob"));
        assert!(bare.get::<Slot<Who>>().is_none());
    }
}
