# shellcheck shell=bash
# Shared by the conformance suites: install and configure the real clients (aws CLI, rclone,
# and what apt-get brings) and the checks that several suites make with them. Source it after
# server.sh and checks.sh, from the repository's root (where the suites cd to).
#   have CMD; install_missing CMD[=PACKAGE]...; install_aws (VENV);
#   curl_setup SECONDS (CURL, as the test user);
#   aws_setup FILE [S3-SETTING...]; aws_as USER ARGS...; aws_get_cmp USER S3-URL FILE [-];
#   rcl ARGS...; rclone_config FILE; rclone_webdav_remote / rclone_s3_remote;
#   remote_cmp, remote_lists, remote_count, rclone_listing_is, copy_is_noop.
# Timeouts: every aws and rclone call is bounded by CLIENT_TIMEOUT seconds (a suite may set it).

CLIENT_TIMEOUT=900
REGION=us-east-1 # the region the S3 clients sign for

# --- installing ----------------------------------------------------------------------------
# Also where a non-root PATH lacks the sbin folders (mount.davfs is in /usr/sbin).
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# The Debian packages of the clients whose command is missing, installed with apt-get. Each
# argument is COMMAND or COMMAND=PACKAGE; COMMAND may be A|B (either one will do).
install_missing() {
  local spec cmds pkg c found need=()
  for spec in "$@"; do
    cmds=${spec%%=*} pkg=${spec#*=} found=
    for c in ${cmds//|/ }; do have "$c" && found=yes; done
    [ -n "$found" ] || need+=("$pkg")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then echo "     cannot install ${need[*]}: not root"; return 1; fi
  echo "     installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq &&
    timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# aws CLI v1 from PyPI, in a venv of ours (kept in target/ between runs, one for every suite),
# so that the version is a current one and nothing of the machine's Python is touched. An
# existing venv is reused (an install takes a while).
VENV=${DAVIT_CONFORMANCE_VENV:-$PWD/target/conformance-venv}
install_aws() {
  if [ -x "$VENV/bin/aws" ] && "$VENV/bin/aws" --version >/dev/null 2>&1; then return 0; fi
  echo "     installing awscli (PyPI) into $VENV"
  rm -rf "$VENV"
  timeout 300 python3 -m venv "$VENV" &&
    timeout 900 "$VENV/bin/python" -m pip install -q awscli >/dev/null &&
    "$VENV/bin/aws" --version >/dev/null 2>&1
}

# --- curl ------------------------------------------------------------------------------------
# CURL: curl as the test user against the current server, each request bounded; over HTTPS it
# trusts the test certificate.
curl_setup() { # max seconds
  CURL=(curl -sS --max-time "$1" -u "$TEST_USER:$TEST_PASSWORD")
  if [[ $DAVIT_URL == https://* ]]; then CURL+=(--cacert "$DAVIT_TEST_CERT_DIR/cert.pem"); fi
}

# --- aws CLI -------------------------------------------------------------------------------
# A private config: our region, path style, one try per request (so that a request that only
# works on a retry shows up as a failure). Arguments after the file are more settings of the
# s3 section, e.g. "multipart_threshold = 8MB".
aws_setup() { # config-file [s3 setting...]
  AWS_CONF=$1
  shift
  {
    printf '[default]\nregion = %s\nmax_attempts = 1\nretry_mode = standard\ns3 =\n  addressing_style = path\n' "$REGION"
    [ $# -eq 0 ] || printf '  %s\n' "$@"
  } >"$AWS_CONF"
}
# The aws CLI as USER: only that user's key (add_s3_key) and our config, against the current
# server. Over HTTPS it trusts the test certificate; no CA bundle of the caller's is seen.
aws_as() { # user, aws arguments...
  local user=$1 ca=()
  shift
  if [[ $DAVIT_URL == https://* ]]; then ca=(AWS_CA_BUNDLE="$DAVIT_TEST_CERT_DIR/cert.pem"); fi
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_DEFAULT_PROFILE -u AWS_ENDPOINT_URL -u AWS_CA_BUNDLE \
    AWS_CONFIG_FILE="$AWS_CONF" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ACCESS_KEY_ID="${S3_KEY[$user]}" AWS_SECRET_ACCESS_KEY="${S3_SECRET[$user]}" "${ca[@]}" \
    timeout -k 10 "$CLIENT_TIMEOUT" "$VENV/bin/aws" --endpoint-url "$DAVIT_URL" "$@"
}
# Download an object as USER and compare it with a local file. Into a file, the aws CLI gets a
# large object in ranged parts; with "-" as the last argument it streams it to stdout instead.
aws_get_cmp() { # user s3-url local-file [-]
  local got=$WORK/aws-got
  rm -f "$got"
  if [ "${4:-}" = - ]; then
    aws_as "$1" s3 cp --only-show-errors "$2" - >"$got"
  else
    aws_as "$1" s3 cp --no-progress "$2" "$got" >/dev/null
  fi && cmp "$got" "$3"
}

# --- rclone ----------------------------------------------------------------------------------
# rclone is a Go program: it must not see AWS_CA_BUNDLE. Every call is bounded.
RCLONE_ARGS=()
rcl() { env -u AWS_CA_BUNDLE timeout -k 10 "$CLIENT_TIMEOUT" rclone "${RCLONE_ARGS[@]}" "$@"; }
rclone_obscure() { env -u AWS_CA_BUNDLE timeout 30 rclone obscure "$1"; } # a password as its config holds it

# A private config file for the current server, empty until the remotes below are added.
# Strict: one try, so that a request that only works on a retry shows up as a failure. Over
# HTTPS it trusts the test certificate.
rclone_config() { # file
  RCLONE_CONF=$1
  : >"$RCLONE_CONF" && chmod 600 "$RCLONE_CONF" || return 1
  RCLONE_ARGS=(--config "$RCLONE_CONF" --retries 1 --low-level-retries 1)
  if [[ $DAVIT_URL == https://* ]]; then RCLONE_ARGS+=(--ca-cert "$DAVIT_TEST_CERT_DIR/cert.pem"); fi
}
rclone_webdav_remote() { # name vendor user password: remote "name:" for /dav/ as that user
  local pass
  pass=$(rclone_obscure "$4") || return 1
  printf '[%s]\ntype = webdav\nurl = %s\nvendor = %s\nuser = %s\npass = %s\n\n' \
    "$1" "$DAVIT_URL/dav/" "$2" "$3" "$pass" >>"$RCLONE_CONF"
}
rclone_s3_remote() { # name user: remote "name:" for S3 (provider Other, path style) with the user's key
  printf '[%s]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = %s\nsecret_access_key = %s\nendpoint = %s\nregion = %s\nforce_path_style = true\n\n' \
    "$1" "${S3_KEY[$2]}" "${S3_SECRET[$2]}" "$DAVIT_URL" "$REGION" >>"$RCLONE_CONF"
}

remote_cmp() { rcl cat "$1" | cmp - "$2"; } # remote-file local-file: same bytes
# (Output is captured before grep: with pipefail, "rclone | grep -q" fails at random when
# grep stops reading early and rclone gets SIGPIPE.)
remote_lists() { local l; l=$(rcl lsf "$1") && grep -qxF "$2" <<<"$l"; } # remote name: lsf shows it
remote_count() { # remote n: lsf -R finds n files
  local n
  n=$(rcl lsf -R --files-only "$1" | wc -l)
  [ "$n" -eq "$2" ] || { echo "     $n files, want $2"; return 1; }
}
# keys with sizes, as rclone lists them, in local_listing's form
rclone_listing() { rcl lsf -R --files-only --format ps --separator $'\t' "$@" | LC_ALL=C sort; }
rclone_listing_is() { # local-dir remote [rclone options...]: same names and sizes
  local dir=$1 got want
  shift
  got=$(rclone_listing "$@") || { echo "     lsf $1 failed"; return 1; }
  want=$(local_listing "$dir")
  diff <(echo "$want") <(echo "$got") | head -n 20 | say
  [ "$want" = "$got" ]
}
# A second copy finds every file up to date (S3: size, mtime in metadata, hash; WebDAV: sizes
# and X-OC-Mtime kept).
copy_is_noop() { # rclone copy arguments
  local log changed
  log=$(rcl copy -v "$@" 2>&1) || { tail -n 20 <<<"$log" | say; return 1; }
  changed=$(grep -E ': (Copied|Updated)' <<<"$log")
  [ -z "$changed" ] || { head -n 10 <<<"$changed" | say; return 1; }
}
