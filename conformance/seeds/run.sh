#!/usr/bin/env bash
# Seeds suite: the flows of the five services davit replaces (their READMEs: SpaceShare,
# CloudStore, Secure File Sharing, EZ, Cloud File Storage), walked with curl against one fresh
# server that mails over real SMTP (aiosmtpd on loopback, whose printout is read back for codes
# and links):
#   1. SpaceShare: signup with a mailed code, login with a mailed code only, multipart upload,
#      list, download, delete; the admin deletes the user and every file of theirs is gone;
#   2. CloudStore: register, login, the token as cookie and as header, upload, get by name,
#      share with a friend, the friends of a file, transfer of ownership, access removed, a
#      delete ends every access, the same content uploaded twice stored once;
#   3. Secure File Sharing: signup, verified by the mailed link (a GET shows a page and verifies
#      nothing; its form POST from our origin does), login (JWT), an uploader ("ops") uploads a
#      docx, pptx and xlsx and is refused a pdf, a downloader ("client") downloads through a
#      link it made;
#   4. EZ: register (a registrant cannot pick a role: the field is refused), the operations
#      role set by the admin, login, upload with the type check, the client generates a
#      download URL, downloads with its token and, after expiry, is refused (410);
#   5. Cloud File Storage: register, login, logout (the token is dead), user-isolated upload,
#      list, download, delete, the size limit refused with 413, the OpenAPI document served;
#   and the verification link's token never in the access log; after the server stops, the
#   offline consistency check of its data folder.
# Prints a line per check and a count; exits non-zero when a check failed. DAVIT_BIN names the
# binary (a debug build will do: every file here is small).
set -uo pipefail # no -e: a failing step is counted and the suite goes on to the next one
cd "$(dirname "$0")/../.." || exit
. conformance/lib/server.sh
. conformance/lib/checks.sh

SMTP_PID=
stop_smtp() { if [ -n "$SMTP_PID" ]; then kill "$SMTP_PID" 2>/dev/null; wait "$SMTP_PID" 2>/dev/null; fi; SMTP_PID=; }
suite_work seeds stop_smtp

# --- mail -------------------------------------------------------------------------------------
# aiosmtpd prints every message it gets; $WORK/mail.log is read back by mail_to.
start_smtp() {
  python3 -c 'import aiosmtpd' 2>/dev/null || { echo "     aiosmtpd is missing (pip install aiosmtpd)"; return 1; }
  SMTP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 -u -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" >"$WORK/mail.log" 2>"$WORK/smtp.err" &
  SMTP_PID=$!
  for _ in $(seq 1 100); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$SMTP_PORT" \
      2>/dev/null && return 0
    sleep 0.1
  done
  echo "     aiosmtpd did not start:"; say <"$WORK/smtp.err"; return 1
}
# The N-th whole message to ADDR (1-based), waiting up to 20 s; quoted-printable soft breaks undone.
mail_to() { # addr n
  local i
  for i in $(seq 1 200); do
    python3 - "$WORK/mail.log" "$1" "$2" <<'PY' && return 0
import sys
text = open(sys.argv[1], errors="replace").read().replace("=\n", "")
msgs = text.split("------------ END MESSAGE ------------")[:-1]
mine = [m for m in msgs if any(l.lower().startswith("to:") and sys.argv[2] in l for l in m.splitlines())]
n = int(sys.argv[3])
if len(mine) < n:
    sys.exit(1)
print(mine[n - 1])
PY
    sleep 0.1
  done
  echo "     no mail #$2 to $1" >&2
  return 1
}
code_in() { grep -E '^ *[0-9]{6} *$' | head -1 | tr -d ' '; }      # the 6-digit code of a mail
link_in() { grep -oE 'https?://[^ ]*/api/v1/auth/verify-link/[A-Za-z0-9._-]+' | head -1; }
mail_count() { # addr: how many whole messages to it so far
  python3 - "$WORK/mail.log" "$1" <<'PY'
import sys
text = open(sys.argv[1], errors="replace").read()
msgs = text.split("------------ END MESSAGE ------------")[:-1]
print(sum(any(l.lower().startswith("to:") and sys.argv[2] in l for l in m.splitlines()) for m in msgs))
PY
}

# --- HTTP -------------------------------------------------------------------------------------
# One request: prints the status code; the body is in $WORK/body. AUTH is "" (none),
# "bearer:TOKEN", "cookie:TOKEN" or "basic:USER:PASSWORD".
call() { # auth method path [curl args...]
  local auth=$1 method=$2 path=$3; shift 3
  local args=(-sS --max-time 60 -o "$WORK/body" -w '%{http_code}' -X "$method")
  case $auth in
    bearer:*) args+=(-H "Authorization: Bearer ${auth#bearer:}") ;;
    cookie:*) args+=(-H "Cookie: davit_access=${auth#cookie:}") ;;
    basic:*) args+=(-u "${auth#basic:}") ;;
  esac
  curl "${args[@]}" "$@" "$DAVIT_URL$path"
}
answers() { # code auth method path [curl args...]: the request answers this status
  local want=$1 got; shift
  got=$(call "$@")
  [ "$got" = "$want" ] && return 0
  echo "     $2 $3: $got, want $want"; head -c 400 "$WORK/body" | say; echo
  return 1
}
posts() { # code auth path json: POST a JSON body
  local code=$1 auth=$2 path=$3
  printf '%s' "$4" >"$WORK/req.json"
  answers "$code" "$auth" POST "$path" -H 'content-type: application/json' --data-binary "@$WORK/req.json"
}
jget() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$WORK/body" "$1"; }
same_file() { cmp -s "$WORK/body" "$1" || { echo "     the body differs from $1"; return 1; }; }
serves() { answers 200 "$1" GET "$2" && same_file "$3"; } # auth path local-file: 200 and these bytes
is() { # python-expression want: a value of the last JSON answer
  local got; got=$(jget "$1") || return 1
  [ "$got" = "$2" ] || { echo "     $1 is $got, want $2"; return 1; }
}
url_answers() { # code url: an unauthenticated GET of a full URL (a link) answers this
  local got; got=$(curl -sS --max-time 60 -o "$WORK/body" -w '%{http_code}' "$2")
  [ "$got" = "$1" ] || { echo "     GET $2: $got, want $1"; head -c 300 "$WORK/body" | say; echo; return 1; }
}
names_in() { jget '" ".join(sorted(i["name"] for i in d["items"]))'; } # of a folder listing

admin_token() { posts 200 "" /api/v1/auth/login '{"username":"admin","password":"admin-password-1"}' && jget 'd["access_token"]'; }
user_id() { # name: the id of an account, found by the admin
  call "bearer:$ADMIN" GET "/api/v1/admin/users?q=$1" >/dev/null &&
    jget "[u['id'] for u in d['items'] if u['username'] == '$1'][0]"
}
set_role() { # name role
  local id; id=$(user_id "$1") || return 1
  printf '{"role":"%s"}' "$2" >"$WORK/req.json"
  answers 200 "bearer:$ADMIN" PATCH "/api/v1/admin/users/$id" -H 'content-type: application/json' \
    --data-binary "@$WORK/req.json"
}
stat_of() { call "bearer:$ADMIN" GET /api/v1/admin/stats >/dev/null && jget "d['$1']"; }

# Register NAME and confirm it with the mailed code: sets TOKEN[NAME] after a password login.
declare -A TOKEN=()
register() { # name
  posts 202 "" /api/v1/auth/register "{\"username\":\"$1\",\"email\":\"$1@example.test\",\"password\":\"$1-password-1\"}"
}
verify_by_code() { # name
  local code
  code=$(mail_to "$1@example.test" 1 | code_in)
  [ -n "$code" ] || { echo "     no code mailed to $1"; return 1; }
  posts 200 "" /api/v1/auth/verify "{\"username\":\"$1\",\"code\":\"$code\"}"
}
login() { # name: a password login, the token kept in TOKEN[name]
  posts 200 "" /api/v1/auth/login "{\"username\":\"$1\",\"password\":\"$1-password-1\"}" &&
    TOKEN[$1]=$(jget 'd["access_token"]')
}
put_file() { # code name server-path local-file
  answers "$1" "bearer:${TOKEN[$2]}" PUT "/api/v1/files$3" --data-binary "@$4"
}
new_account() { register "$1" && verify_by_code "$1"; } # registered and confirmed by the mailed code
mkdir_as() { posts 201 "bearer:${TOKEN[$1]}" /api/v1/mkdir "{\"path\":\"$2\"}"; }

# --- the server -------------------------------------------------------------------------------
start_server() {
  new_davit_data
  add_user fred fred-password-1 user || return 1 # CloudStore's friend, Cloud File Storage's neighbour
  cat >"$DAVIT_WORK/davit.toml" <<'TOML'
[policy.roles.uploader]        # the "ops" users of Secure File Sharing and EZ
allowed_extensions = ["docx", "pptx", "xlsx"]
TOML
  DAVIT_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" DAVIT_MAIL_FROM=davit@example.test DAVIT_MAX_FILE_SIZE=1M \
    DAVIT_CONFIG="$DAVIT_WORK/davit.toml" start_davit_on "$DAVIT_DATA"
}
TOKEN[fred]=
fred_token() { posts 200 "" /api/v1/auth/login '{"username":"fred","password":"fred-password-1"}' && TOKEN[fred]=$(jget 'd["access_token"]'); }

echo "== seeds: the five services' flows over curl and SMTP ($DAVIT_BIN)"
check "aiosmtpd runs on loopback" start_smtp || { summary seeds; exit; }
check "a fresh server with SMTP, the uploader type rule and a 1 MiB size limit" start_server || { summary seeds; exit; }
ADMIN=$(admin_token) || ADMIN=
check "the admin signs in" test -n "$ADMIN"
check "fred signs in" fred_token
fails_before=$fail
head -c 2000 /dev/urandom >"$WORK/small.bin"
printf 'hello from a form\n' >"$WORK/a.txt"

# --- 1. SpaceShare ----------------------------------------------------------------------------
echo "-- 1. SpaceShare: OTP signup and login, upload, list, download, delete, the admin deletes the user"
check "signup: POST /auth/register answers 202 and mails a code" register sam
check "the mailed code activates the account" verify_by_code sam
sam_login_code() {
  posts 202 "" /api/v1/auth/login/code '{"email":"sam@example.test"}' || return 1
  local answer; answer=$(cat "$WORK/body")
  posts 202 "" /api/v1/auth/login/code '{"email":"nobody@example.test"}' || return 1
  [ "$answer" = "$(cat "$WORK/body")" ] || { echo "     an unknown address is answered otherwise"; return 1; }
  local code; code=$(mail_to sam@example.test 2 | code_in)
  [ -n "$code" ] || { echo "     no sign-in code mailed"; return 1; }
  posts 200 "" /api/v1/auth/login/otp "{\"username\":\"sam\",\"code\":\"$code\"}" && TOKEN[sam]=$(jget 'd["access_token"]')
}
check "login with a mailed code only: /auth/login/code then /auth/login/otp" sam_login_code
check "nothing was mailed to an unknown address" test "$(mail_count nobody@example.test)" = 0
check "a folder for the uploads" mkdir_as sam /files
check "upload: multipart/form-data POST" \
  answers 201 "bearer:${TOKEN[sam]}" POST /api/v1/files/files -F "file=@$WORK/a.txt" -F "file=@$WORK/small.bin"
sam_lists() { answers 200 "bearer:${TOKEN[sam]}" GET /api/v1/files/files && is '" ".join(sorted(i["name"] for i in d["items"]))' "a.txt small.bin"; }
check "list the user's files" sam_lists
check "download by name: the same bytes" serves "bearer:${TOKEN[sam]}" /api/v1/files/files/small.bin "$WORK/small.bin"
check "delete a file" answers 204 "bearer:${TOKEN[sam]}" DELETE /api/v1/files/files/a.txt
check "it is gone" answers 404 "bearer:${TOKEN[sam]}" GET /api/v1/files/files/a.txt
files_before=$(stat_of files)
sam_id=$(user_id sam)
check "the admin deletes the user" answers 204 "bearer:$ADMIN" DELETE "/api/v1/admin/users/$sam_id"
check "every file of theirs is gone (the server counts one file fewer)" test "$(stat_of files)" = "$((files_before - 1))"
check "their token is dead" answers 401 "bearer:${TOKEN[sam]}" GET /api/v1/files/files
no_code_for_sam() {
  posts 202 "" /api/v1/auth/login/code '{"username":"sam"}' || return 1
  sleep 0.5
  [ "$(mail_count sam@example.test)" = 2 ] || { echo "     a code was mailed"; return 1; }
}
check "and their code login finds no account" no_code_for_sam

# --- 2. CloudStore ----------------------------------------------------------------------------
echo "-- 2. CloudStore: token as cookie and header, my-drive, drive-permit, drive-share, dedup"
check "register" register carl
check "verify" verify_by_code carl
check "login" login carl
check "the token as a cookie" answers 200 "cookie:${TOKEN[carl]}" GET /api/v1/me
check "the token in the Authorization header" answers 200 "bearer:${TOKEN[carl]}" GET /api/v1/me
check "my-drive: a folder" mkdir_as carl /drive
check "my-drive: upload" put_file 201 carl /drive/report.txt "$WORK/small.bin"
check "my-drive: get by file name" serves "bearer:${TOKEN[carl]}" /api/v1/files/drive/report.txt "$WORK/small.bin"
check "drive-permit: share with a friend" posts 201 "bearer:${TOKEN[carl]}" /api/v1/shares '{"path":"/drive/report.txt","user":"fred"}'
share_id=$(jget 'd["id"]')
check "the friend reads it" serves "bearer:${TOKEN[fred]}" /api/v1/files/shared/carl/report.txt "$WORK/small.bin"
friends_of_report() {
  answers 200 "bearer:${TOKEN[carl]}" GET "/api/v1/shares/by-path?path=/drive/report.txt" &&
    is '" ".join(a["user"] for a in d["access"])' fred
}
check "drive-share: the friends of a file" friends_of_report
shared_by_carl() { answers 200 "bearer:${TOKEN[carl]}" GET /api/v1/shares && is 'len(d["mine"])' 1; }
check "drive-permit GET: the owner lists what they shared" shared_by_carl
check "a file to give away" put_file 201 carl /drive/gift.txt "$WORK/a.txt"
check "drive-permit PUT: transfer ownership" posts 200 "bearer:${TOKEN[carl]}" /api/v1/transfers '{"path":"/drive/gift.txt","user":"fred"}'
check "the new owner has it" serves "bearer:${TOKEN[fred]}" /api/v1/files/gift.txt "$WORK/a.txt"
check "the old owner does not" answers 404 "bearer:${TOKEN[carl]}" GET /api/v1/files/drive/gift.txt
check "drive-permit DELETE: remove the friend's access" answers 204 "bearer:${TOKEN[carl]}" DELETE "/api/v1/shares/$share_id"
check "the friend is refused" answers 404 "bearer:${TOKEN[fred]}" GET /api/v1/files/shared/carl/report.txt
check "shared again" posts 201 "bearer:${TOKEN[carl]}" /api/v1/shares '{"path":"/drive/report.txt","user":"fred"}'
check "the owner deletes the file" answers 204 "bearer:${TOKEN[carl]}" DELETE /api/v1/files/drive/report.txt
check "every access ends with it" answers 404 "bearer:${TOKEN[fred]}" GET /api/v1/files/shared/carl/report.txt
no_grant_left() { answers 200 "bearer:${TOKEN[fred]}" GET /api/v1/shares && is 'len(d["shared_with_me"])' 0; }
check "no grant is left" no_grant_left
head -c 300000 /dev/urandom >"$WORK/twice.bin"
dedup() {
  local logical stored
  logical=$(stat_of logical_bytes) && stored=$(stat_of stored_bytes) || return 1
  put_file 201 carl /drive/one.bin "$WORK/twice.bin" && put_file 201 carl /drive/two.bin "$WORK/twice.bin" || return 1
  local dl=$(($(stat_of logical_bytes) - logical)) ds=$(($(stat_of stored_bytes) - stored))
  echo "     logical +$dl bytes, stored +$ds bytes"
  [ "$dl" = 600000 ] && [ "$ds" -ge 300000 ] && [ "$ds" -lt 330000 ]
}
check "the same content uploaded twice is stored once" dedup

# --- 3. Secure File Sharing -------------------------------------------------------------------
echo "-- 3. Secure File Sharing: verification by the mailed link, JWT, ops uploads, a client's link"
check "signup" register sara
verify_link() {
  local link; link=$(mail_to sara@example.test 1 | link_in)
  [ -n "$link" ] || { echo "     no link in the mail"; return 1; }
  [[ $link == "$DAVIT_URL"/* ]] || { echo "     the link points elsewhere: $link"; return 1; }
  VERIFY_PATH=${link#"$DAVIT_URL"}
  answers 200 "" GET "$VERIFY_PATH" || return 1
  grep -q '<form method="post"' "$WORK/body" || { echo "     no form on the page"; return 1; }
  posts 403 "" /api/v1/auth/login '{"username":"sara","password":"sara-password-1"}' || { echo "     a GET verified"; return 1; }
  answers 403 "" POST "$VERIFY_PATH" -H 'content-type: application/x-www-form-urlencoded' --data 'confirm=yes' \
    -H 'Origin: https://evil.example' || { echo "     another origin's form was taken"; return 1; }
  answers 200 "" POST "$VERIFY_PATH" -H 'content-type: application/x-www-form-urlencoded' --data 'confirm=yes' \
    -H "Origin: $DAVIT_URL" || return 1
  answers 400 "" POST "$VERIFY_PATH" -H 'content-type: application/x-www-form-urlencoded' --data 'confirm=yes' \
    -H "Origin: $DAVIT_URL" || { echo "     used twice"; return 1; }
}
check "the mailed link: GET shows a page, the form POST from our origin verifies, once" verify_link
jwt_login() { # name: header.payload.signature
  login "$1" || return 1
  [ "$(tr -cd . <<<"${TOKEN[$1]}" | wc -c)" = 2 ] || { echo "     not a JWT"; return 1; }
}
check "login answers a JWT" jwt_login sara
check "the admin makes sara an uploader (ops)" set_role sara uploader
for ext in docx pptx xlsx; do
  cp "$WORK/small.bin" "$WORK/deck.$ext"
  check "ops uploads a .$ext" put_file 201 sara "/deck.$ext" "$WORK/deck.$ext"
done
cp "$WORK/small.bin" "$WORK/deck.pdf"
check "ops is refused a .pdf (415)" put_file 415 sara /deck.pdf "$WORK/deck.pdf"
check "ops cannot download even its own upload" answers 403 "bearer:${TOKEN[sara]}" GET /api/v1/files/deck.docx
check "a client account" new_account cleo
check "the admin makes it a downloader (client)" set_role cleo downloader
check "the client signs in" login cleo
check "ops shares the document with the client" posts 201 "bearer:${TOKEN[sara]}" /api/v1/shares '{"path":"/deck.docx","user":"cleo"}'
check "the client cannot upload" put_file 403 cleo /mine.docx "$WORK/deck.docx"
client_link() {
  posts 201 "bearer:${TOKEN[cleo]}" /api/v1/links '{"path":"/shared/sara/deck.docx","expires_in":3600}' || return 1
  local url; url=$(jget 'd["url"]')
  curl -sS --max-time 60 -o "$WORK/body" "$url" && same_file "$WORK/deck.docx"
}
check "the client downloads through a link it made" client_link
links_of_sara() { answers 200 "bearer:${TOKEN[sara]}" GET /api/v1/links && is 'd["links"][0]["made_by"]' cleo; }
check "ops sees the client's link among its own" links_of_sara

# --- 4. EZ ------------------------------------------------------------------------------------
echo "-- 4. EZ: the admin gives the operations role, the client's download URL expires"
check "a registrant cannot pick a role (is_operation_user is refused)" \
  posts 400 "" /api/v1/auth/register '{"username":"opal","email":"opal@example.test","password":"opal-password-1","is_operation_user":true}'
check "register the operations user" new_account opal
check "register the client" new_account ezra
check "the admin sets the operations role (uploader)" set_role opal uploader
check "the admin sets the client role (downloader)" set_role ezra downloader
check "the operations user signs in" login opal
check "the client signs in" login ezra
cp "$WORK/small.bin" "$WORK/q3.pptx"
check "upload with the type check: a .pptx is taken" put_file 201 opal /q3.pptx "$WORK/q3.pptx"
check "upload with the type check: a .txt is refused (415)" put_file 415 opal /notes.txt "$WORK/a.txt"
check "a client cannot upload" put_file 403 ezra /q3.pptx "$WORK/q3.pptx"
check "the file is shared with the client" posts 201 "bearer:${TOKEN[opal]}" /api/v1/shares '{"path":"/q3.pptx","user":"ezra"}'
ez_url() {
  posts 201 "bearer:${TOKEN[ezra]}" /api/v1/links '{"path":"/shared/opal/q3.pptx","expires_in":2}' || return 1
  EZ_URL=$(jget 'd["url"]')
  [[ $EZ_URL == "$DAVIT_URL/s/"* ]] || { echo "     url: $EZ_URL"; return 1; }
}
check "the client generates a download URL" ez_url
url_serves() { url_answers 200 "$1" && same_file "$2"; } # url local-file
check "downloads with the token" url_serves "$EZ_URL" "$WORK/q3.pptx"
sleep 3
expired() { url_answers 410 "$1" && grep -q expired "$WORK/body"; }
check "after expiry: refused with 410 Gone, saying it expired" expired "$EZ_URL"

# --- 5. Cloud File Storage --------------------------------------------------------------------
echo "-- 5. Cloud File Storage: logout, isolation, size limit, OpenAPI"
check "register" new_account cora
check "login" login cora
dead_after_logout() {
  local t=${TOKEN[cora]}
  answers 204 "bearer:$t" POST /api/v1/auth/logout || return 1
  answers 401 "bearer:$t" GET /api/v1/me
}
check "logout: the token is dead" dead_after_logout
check "login again" login cora
check "upload" put_file 201 cora /example.bin "$WORK/small.bin"
lists_only() { # name: the drive root holds this file (beside the virtual folder "shared")
  answers 200 "bearer:${TOKEN[cora]}" GET /api/v1/files || return 1
  local got; got=$(jget '" ".join(sorted(i["name"] for i in d["items"] if i["name"] != "shared"))')
  [ "$got" = "$1" ] || { echo "     the root holds: $got"; return 1; }
}
check "list" lists_only example.bin
check "download" serves "bearer:${TOKEN[cora]}" /api/v1/files/example.bin "$WORK/small.bin"
check "isolated: another user does not see it" answers 404 "bearer:${TOKEN[fred]}" GET /api/v1/files/example.bin
check "isolated: nor through /shared" answers 404 "bearer:${TOKEN[fred]}" GET /api/v1/files/shared/cora/example.bin
check "delete" answers 204 "bearer:${TOKEN[cora]}" DELETE /api/v1/files/example.bin
head -c $((2 * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
check "the size limit: refused with 413" put_file 413 cora /big.bin "$WORK/big.bin"
openapi() { answers 200 "" GET /api/v1/openapi.json && is 'd["openapi"][:3]' 3.1 && is '"/api/v1/auth/login/code" in d["paths"]' True; }
check "the OpenAPI document is served" openapi

# --- the access log ---------------------------------------------------------------------------
echo "-- the log"
token_not_logged() {
  [ -n "${VERIFY_PATH:-}" ] || { echo "     no verification link was seen"; return 1; }
  server_log_has "path=/api/v1/auth/verify-link/<token>" && not server_log_has "$VERIFY_PATH"
}
check "the verification link's token is <token> in the access log" token_not_logged
finish_server seeds "$fails_before"
summary seeds
