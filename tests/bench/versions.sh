#!/usr/bin/env bash
# Benchmark (not a test) of S3 versioning against a fresh release server on 127.0.0.1: what a
# versioned bucket costs, measured beside an unversioned one in the same run.
#   - small objects: N 4 KiB PUTs (each key written twice, so the versioned bucket keeps a
#     noncurrent version of every key), N GETs and a full ListObjectsV2 of each bucket, C
#     requests at once (botocore, one client per thread); the phases alternate between the
#     two buckets, twice each, and the better run of each counts;
#   - listing: ListObjectVersions of V versions (V/10 keys of 10 versions) against
#     ListObjectsV2 of V keys, 1000 a page, each timed three times (best counts).
# Prints each figure and the versioned/unversioned ratio (the targets: PUT, GET, list within
# 1.1; ListObjectVersions at most 2x ListObjectsV2).
# Usage: tests/bench/versions.sh [N=4000] [C=16] [V=10000]. DAVIT_BIN picks the server binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-4000}; C=${2:-16}; V=${3:-10000}
. conformance/lib/server.sh
trap cleanup_davit EXIT
new_davit_data
add_user "$TEST_USER" "$TEST_PASSWORD"
add_s3_key "$TEST_USER"
DAVIT_LOG=warn start_davit_on "$DAVIT_DATA"

python3 - "$DAVIT_URL" "${S3_KEY[$TEST_USER]}" "${S3_SECRET[$TEST_USER]}" "$N" "$C" "$V" <<'PY'
import sys, time, threading
from concurrent.futures import ThreadPoolExecutor
import botocore.session
from botocore.config import Config

url, key, secret, n, c, v = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
session = botocore.session.get_session()
local = threading.local()

def client():
    if not hasattr(local, "c"):
        local.c = session.create_client(
            "s3", endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, max_pool_connections=c + 4))
    return local.c

main = client()
for b in ("plain", "versioned", "plainlist", "manyversions"):
    main.create_bucket(Bucket=b)
for b in ("versioned", "manyversions"):
    main.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
body = b"x" * 4096
pool = ThreadPoolExecutor(max_workers=c)

def timed(f, items):
    t = time.perf_counter()
    list(pool.map(f, items))
    return time.perf_counter() - t

def list_all(bucket, versions=False):
    t = time.perf_counter()
    args, count = {"Bucket": bucket, "MaxKeys": 1000}, 0
    while True:
        if versions:
            r = main.list_object_versions(**args)
            count += len(r.get("Versions", [])) + len(r.get("DeleteMarkers", []))
            if not r["IsTruncated"]:
                break
            args["KeyMarker"], args["VersionIdMarker"] = r["NextKeyMarker"], r["NextVersionIdMarker"]
        else:
            r = main.list_objects_v2(**args)
            count += r.get("KeyCount", 0)
            if not r["IsTruncated"]:
                break
            args["ContinuationToken"] = r["NextContinuationToken"]
    return time.perf_counter() - t, count

best = {}
def keep(name, secs):
    best[name] = min(best.get(name, secs), secs)

for rnd in range(2):
    for b in (("plain", "versioned") if rnd == 0 else ("versioned", "plain")):
        keys = [f"k{rnd}/{i:06d}" for i in range(n)]
        keep(f"put {b}", timed(lambda k: client().put_object(Bucket=b, Key=k, Body=body), keys))
        # The second write of each key: in the versioned bucket the first becomes noncurrent.
        keep(f"put {b}", timed(lambda k: client().put_object(Bucket=b, Key=k, Body=body), keys))
        keep(f"get {b}", timed(lambda k: client().get_object(Bucket=b, Key=k)["Body"].read(), keys))
        secs, count = list_all(b)
        assert count == n * (rnd + 1), (b, count)
        keep(f"list {b}", secs)

def show(what, plain, versioned, unit_count=None):
    p, q = best[plain], best[versioned]
    if unit_count:
        print(f"{what:<44} unversioned {unit_count / p:9.0f}/s   versioned {unit_count / q:9.0f}/s   time ratio {q / p:.2f}")
    else:
        print(f"{what:<44} unversioned {p:9.3f} s    versioned {q:9.3f} s    time ratio {q / p:.2f}")

print(f"# {n} objects of 4 KiB, {c} at once; best of two rounds")
show("PUT (each key twice)", "put plain", "put versioned", n)
show("GET", "get plain", "get versioned", n)
show(f"ListObjectsV2 of {2 * n} keys", "list plain", "list versioned")

# V keys against V versions of V/10 keys.
timed(lambda i: client().put_object(Bucket="plainlist", Key=f"key{i:06d}", Body=b"x"), range(v))
timed(lambda i: client().put_object(Bucket="manyversions", Key=f"key{i // 10:06d}", Body=b"x"), range(v))
for _ in range(3):
    secs, count = list_all("plainlist")
    assert count == v, count
    keep("objects", secs)
    secs, count = list_all("manyversions", versions=True)
    assert count == v, count
    keep("versions", secs)
print(f"# listing, 1000 a page, best of three")
p, q = best["objects"], best["versions"]
print(f"{'ListObjectsV2 of %d keys' % v:<44} {p:.3f} s")
print(f"{'ListObjectVersions of %d versions' % v:<44} {q:.3f} s    ratio {q / p:.2f} of ListObjectsV2")
PY
