# S3 in depth, sourced by conformance/s3/run.sh (parts 7 and 8; part 6, policies, is there):
# what backup tools and browser apps reach for beyond put/get/list, through real clients.

versions_are() { # bucket key count: ListObjectVersions shows that many versions of the key
  local n
  n=$(awsc s3api list-object-versions --bucket "$1" --prefix "$2" \
    --query "length(Versions[?Key=='$2'])" --output text) || return 1
  [ "$n" = "$3" ] || { echo "     $n versions, want $3"; return 1; }
}
version_ids() { # bucket key: the version ids, newest first
  awsc s3api list-object-versions --bucket "$1" --prefix "$2" \
    --query "Versions[?Key=='$2'].VersionId" --output text | tr '\t' '\n'
}
get_version_cmp() { # bucket key version-id local-file
  awsc s3api get-object --bucket "$1" --key "$2" --version-id "$3" "$WORK/version" >/dev/null &&
    cmp "$WORK/version" "$4"
}
has_delete_marker() { # bucket key
  local n
  n=$(awsc s3api list-object-versions --bucket "$1" --prefix "$2" \
    --query "length(DeleteMarkers[?Key=='$2' && IsLatest])" --output text) || return 1
  [ "$n" = 1 ] || { echo "     $n latest delete markers"; return 1; }
}
remove_delete_marker() { # bucket key
  local id
  id=$(awsc s3api list-object-versions --bucket "$1" --prefix "$2" \
    --query "DeleteMarkers[?Key=='$2' && IsLatest].VersionId" --output text) || return 1
  quiet awsc s3api delete-object --bucket "$1" --key "$2" --version-id "$id"
}
rclone_versions_listed() { # bucket key-stem: rclone --s3-versions shows the key and its old versions
  local out n
  out=$(rcl lsf --s3-versions "s3:$1/") || return 1
  n=$(grep -c "^$2" <<<"$out")
  [ "$n" -ge 2 ] || { echo "     rclone --s3-versions listed:"; head -n 5 <<<"$out" | say; return 1; }
}

restic_round_trip() { # bucket: back up DATA/tree, restore it, compare
  local repo="s3:$DAVIT_URL/$1/restic" out
  out=$(env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID="${S3_KEY[$TEST_USER]}" AWS_SECRET_ACCESS_KEY="${S3_SECRET[$TEST_USER]}" \
    RESTIC_PASSWORD=restic-conf-pw timeout -k 10 600 sh -c \
    "restic -r '$repo' init && restic -r '$repo' backup --no-cache -q '$DATA/tree' &&
     restic -r '$repo' restore latest --no-cache --target '$WORK/restic-restore'" 2>&1) ||
    { tail -n 8 <<<"$out" | say; return 1; }
  diff -r "$DATA/tree" "$WORK/restic-restore$DATA/tree"
}

restic_env() { # command...: run it as restic with the test user's key
  env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID="${S3_KEY[$TEST_USER]}" AWS_SECRET_ACCESS_KEY="${S3_SECRET[$TEST_USER]}" \
    RESTIC_PASSWORD=restic-conf-pw timeout -k 10 600 "$@"
}
all_version_ids() { # bucket prefix: every version id below the prefix, sorted
  awsc s3api list-object-versions --bucket "$1" --prefix "$2" --query 'Versions[].VersionId' --output text |
    tr '\t' '\n' | sort
}
# In a bucket with default retention, restic's prune deletes what the forgotten snapshot alone
# used. Whatever restic answers, no retained version may go (its deletes leave delete markers),
# and the repository restic sees stays whole: check passes, the kept snapshot restores.
restic_prune_keeps_locked() { # bucket
  local repo="s3:$DAVIT_URL/$1/restic" src="$WORK/restic-src" out rc before after gone
  rm -rf "$src" "$WORK/restic-kept" && mkdir -p "$src" && cp -r "$DATA/tree" "$src/" &&
    head -c 1048576 /dev/urandom >"$src/only-in-first.bin" || return 1
  out=$(restic_env sh -c "restic -r '$repo' init && restic -r '$repo' backup --no-cache -q '$src'" 2>&1) ||
    { tail -n 8 <<<"$out" | say; return 1; }
  rm "$src/only-in-first.bin"
  out=$(restic_env restic -r "$repo" backup --no-cache -q "$src" 2>&1) || { tail -n 8 <<<"$out" | say; return 1; }
  before=$(all_version_ids "$1" restic/) || return 1
  out=$(restic_env restic -r "$repo" forget --no-cache --keep-last 1 --prune --max-unused 0 2>&1)
  rc=$?
  echo "     restic forget --keep-last 1 --prune exited $rc; its last lines:"
  tail -n 12 <<<"$out" | cut -c1-200 | say
  after=$(all_version_ids "$1" restic/) || return 1
  gone=$(comm -23 <(echo "$before") <(echo "$after") | grep -c .)
  echo "     versions before: $(grep -c . <<<"$before"), after: $(grep -c . <<<"$after"), destroyed: $gone"
  [ "$gone" -eq 0 ] || return 1
  out=$(restic_env sh -c "restic -r '$repo' check --no-cache &&
    restic -r '$repo' restore latest --no-cache --target '$WORK/restic-kept'" 2>&1) ||
    { tail -n 8 <<<"$out" | say; return 1; }
  diff -r "$src" "$WORK/restic-kept$src"
}

part_versions() {
  local fails_before=$fail tag b=conf-versions
  start_server || { check "[versions] server starts" false; return; }
  tag="[versions $DAVIT_URL]"
  aws_conf
  rclone_setup
  printf 'first\n' >"$WORK/v1.txt"
  printf 'second, longer\n' >"$WORK/v2.txt"
  printf 'third, over WebDAV\n' >"$WORK/v3.txt"
  if check "$tag make bucket" quiet awsc s3 mb "s3://$b" &&
    check "$tag PutBucketVersioning Enabled" quiet awsc s3api put-bucket-versioning --bucket "$b" \
      --versioning-configuration Status=Enabled; then
    check "$tag GetBucketVersioning says Enabled" \
      test "$(awsc s3api get-bucket-versioning --bucket "$b" --query Status --output text)" = Enabled
    check "$tag put v1, v2 over S3" quiet awsc s3 cp --no-progress "$WORK/v1.txt" "s3://$b/doc.txt"
    quiet awsc s3 cp --no-progress "$WORK/v2.txt" "s3://$b/doc.txt"
    check "$tag put v3 over WebDAV" http_put "dav/$b/doc.txt" "$WORK/v3.txt"
    check "$tag ListObjectVersions: 3 versions" versions_are "$b" doc.txt 3
    check "$tag GET is the WebDAV version" aws_get_cmp "$TEST_USER" "s3://$b/doc.txt" "$WORK/v3.txt"
    local oldest
    oldest=$(version_ids "$b" doc.txt | tail -n 1)
    check "$tag GET by the oldest version id is v1" get_version_cmp "$b" doc.txt "$oldest" "$WORK/v1.txt"
    check "$tag rclone --s3-versions lists the old versions" rclone_versions_listed "$b" doc
    check "$tag DeleteObject makes a delete marker" quiet awsc s3 rm "s3://$b/doc.txt"
    check "$tag   the key is gone (HeadObject 404)" aws_missing "$b" doc.txt
    check "$tag   WebDAV no longer shows it (404)" test "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$DAVIT_URL/dav/$b/doc.txt")" = 404
    check "$tag   the delete marker is the latest version" has_delete_marker "$b" doc.txt
    check "$tag   the old versions are still there" versions_are "$b" doc.txt 3
    check "$tag removing the delete marker brings v3 back" remove_delete_marker "$b" doc.txt
    check "$tag   same bytes" aws_get_cmp "$TEST_USER" "s3://$b/doc.txt" "$WORK/v3.txt"
    local lb=conf-locked vid
    if check "$tag make a bucket with object lock" quiet awsc s3api create-bucket --bucket "$lb" --object-lock-enabled-for-bucket &&
      check "$tag default retention COMPLIANCE 1 day" quiet awsc s3api put-object-lock-configuration --bucket "$lb" \
        --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":1}}}'; then
      vid=$(awsc s3api put-object --bucket "$lb" --key kept.txt --body "$WORK/v1.txt" --query VersionId --output text)
      check "$tag   a put gets a version id" test -n "$vid"
      check "$tag   get-object-retention says COMPLIANCE" \
        test "$(awsc s3api get-object-retention --bucket "$lb" --key kept.txt --version-id "$vid" --query Retention.Mode --output text)" = COMPLIANCE
      check "$tag   deleting that version is refused (AccessDenied)" aws_error_is AccessDenied s3api delete-object --bucket "$lb" --key kept.txt --version-id "$vid"
      check "$tag   over REST too (403)" test "$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X DELETE "$DAVIT_URL/api/v1/versions/$lb/kept.txt?version=$vid")" = 403
      check "$tag   a plain delete leaves a delete marker" quiet awsc s3 rm "s3://$lb/kept.txt"
      check "$tag   the locked version still reads back" get_version_cmp "$lb" kept.txt "$vid" "$WORK/v1.txt"
    fi
    if command -v restic >/dev/null; then
      check "$tag restic backs up into the versioned bucket and restores the same files" restic_round_trip "$b"
      if [ -n "${vid:-}" ]; then
        check "$tag restic prune in the bucket with default COMPLIANCE retention destroys no version; check and restore pass" \
          restic_prune_keeps_locked "$lb"
      fi
    else
      skip "$tag restic" "not installed"
    fi
  fi
  finish_server "$tag" "$fails_before"
}

preflight_status() { # bucket origin: the status of a browser's preflight for a PUT
  curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X OPTIONS \
    -H "Origin: $2" -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: content-type' \
    "$DAVIT_URL/$1/upload.txt"
}
preflight_allows() { # bucket origin
  local h
  h=$(curl -sS -D - -o /dev/null --max-time 30 -X OPTIONS -H "Origin: $2" \
    -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: content-type' \
    "$DAVIT_URL/$1/upload.txt") || return 1
  grep -qi "^access-control-allow-origin: $2" <<<"$h" && grep -qi '^access-control-allow-methods:.*PUT' <<<"$h" ||
    { head -n 12 <<<"$h" | say; return 1; }
}
no_cors_grant() { # path origin: a preflight is answered without Access-Control-Allow-Origin
  local h
  h=$(curl -sS -D - -o /dev/null --max-time 30 -X OPTIONS -H "Origin: $2" \
    -H 'Access-Control-Request-Method: PUT' "$DAVIT_URL/$1/upload.txt") || return 1
  not grep -qi '^access-control-allow-origin' <<<"$h" || { head -n 12 <<<"$h" | say; return 1; }
}
tags_are() { # bucket key "k=v,k=v" (sorted)
  local got
  got=$(awsc s3api get-object-tagging --bucket "$1" --key "$2" \
    --query 'sort_by(TagSet,&Key)[].join(`=`,[Key,Value])' --output text | tr '\t' ',') || return 1
  [ "$got" = "$3" ] || { echo "     tags: $got; want $3"; return 1; }
}

part_cors_tags() {
  local fails_before=$fail tag b=conf-browser
  start_server || { check "[cors+tags] server starts" false; return; }
  tag="[cors+tags $DAVIT_URL]"
  aws_conf
  if check "$tag make bucket" quiet awsc s3 mb "s3://$b"; then
    check "$tag a preflight before any rule is refused (403)" test "$(preflight_status "$b" https://app.example)" = 403
    check "$tag PutBucketCors" quiet awsc s3api put-bucket-cors --bucket "$b" --cors-configuration \
      '{"CORSRules":[{"AllowedOrigins":["https://app.example"],"AllowedMethods":["GET","PUT"],"AllowedHeaders":["*"],"ExposeHeaders":["ETag"],"MaxAgeSeconds":600}]}'
    check "$tag GetBucketCors reads it back" \
      test "$(awsc s3api get-bucket-cors --bucket "$b" --query 'CORSRules[0].AllowedOrigins[0]' --output text)" = https://app.example
    check "$tag the allowed origin's preflight is allowed" preflight_allows "$b" https://app.example
    check "$tag another origin's preflight is refused (403)" test "$(preflight_status "$b" https://evil.example)" = 403
    check "$tag the REST API grants no origin" no_cors_grant api/v1/files https://app.example
    check "$tag put an object with tags" quiet awsc s3api put-object --bucket "$b" --key t.txt \
      --body "$DATA/small.txt" --tagging 'team=red&year=2026'
    check "$tag GetObjectTagging" tags_are "$b" t.txt "team=red,year=2026"
    check "$tag PutObjectTagging replaces them" quiet awsc s3api put-object-tagging --bucket "$b" --key t.txt \
      --tagging 'TagSet=[{Key=team,Value=blue}]'
    check "$tag   read back" tags_are "$b" t.txt "team=blue"
    check "$tag PutBucketLifecycleConfiguration" quiet awsc s3api put-bucket-lifecycle-configuration --bucket "$b" \
      --lifecycle-configuration '{"Rules":[{"ID":"tmp","Status":"Enabled","Filter":{"Prefix":"tmp/"},"Expiration":{"Days":7},"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":2}}]}'
    check "$tag GetBucketLifecycleConfiguration reads it back" \
      test "$(awsc s3api get-bucket-lifecycle-configuration --bucket "$b" --query 'Rules[0].Expiration.Days' --output text)" = 7
    check "$tag DeleteBucketCors" quiet awsc s3api delete-bucket-cors --bucket "$b"
    check "$tag   the preflight is refused again" test "$(preflight_status "$b" https://app.example)" = 403
  fi
  finish_server "$tag" "$fails_before"
}
