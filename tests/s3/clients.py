"""End to end: real S3 clients against `sluice serve --s3-listen`.

boto3 at its default settings (checksums on, aws-chunked bodies for
uploads of files) on path-style addressing and, under --s3-domain,
virtual-hosted style; and the AWS CLI (if AWS_CLI
names it: sync of a tree up and down, multipart included): buckets, objects, ranges,
listings with delimiters and pages, another tenant's access refused, a
bad signature refused, a revoked key refused within a second; and an
object written through S3 read back through the native API.

Usage: SLUICE=target/debug/sluice PYTHON_WITH_BOTO3 tests/s3/clients.py
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

SLUICE = os.environ.get("SLUICE", "target/debug/sluice")
# The server's --s3-domain: its names resolve to 127.0.0.1 in this process
# only (see resolve_test_domain), so no DNS is needed.
DOMAIN = "s3.sluice.test"


def resolve_test_domain():
    """Names under DOMAIN resolve to 127.0.0.1, as a wildcard DNS record would."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin(data, *args):
    out = subprocess.run([SLUICE, "admin", "--data-dir", data, *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def client(port, key):
    access, secret = key.split()
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


LOG = None


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        if LOG:
            print("the server's log ends:")
            print("".join(open(LOG).readlines()[-15:]))
        sys.exit(1)
    print(f"ok   {what}")


def main():
    work = tempfile.mkdtemp(prefix="sluice-s3-")
    data = os.path.join(work, "data")
    admin(data, "tenant", "create", "acme")
    admin(data, "tenant", "create", "other")
    key = admin(data, "s3-key", "create", "--tenant", "acme")
    other_key = admin(data, "s3-key", "create", "--tenant", "other")
    revoked_key = admin(data, "s3-key", "create", "--tenant", "acme", "--scope", "read")
    token = admin(data, "token", "create", "--tenant", "acme", "--scope", "read")
    check("s3-key create prints ACCESS_KEY_ID SECRET_ACCESS_KEY", [len(p) for p in key.split()], [20, 40])
    listed = admin(data, "s3-key", "list", "--tenant", "acme")
    check("s3-key list shows ids, never secrets", key.split()[1] in listed or key.split()[0] not in listed, False)
    port, s3_port = free_port(), free_port()
    global LOG
    LOG = os.path.join(work, "server.log")
    log = open(LOG, "w")
    server = subprocess.Popen(
        [SLUICE, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--s3-listen", f"127.0.0.1:{s3_port}",
         "--s3-domain", DOMAIN],
        stderr=log,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", s3_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        run(port, s3_port, data, key, other_key, revoked_key, token, work)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("s3 clients: all checks passed")


def run(port, s3_port, data, key, other_key, revoked_key, token, work):
    c = client(s3_port, key)
    other = client(s3_port, other_key)
    c.create_bucket(Bucket="photos")
    check("create, then list buckets", [b["Name"] for b in c.list_buckets()["Buckets"]], ["photos"])
    check("another tenant does not see it", other.list_buckets()["Buckets"], [])
    check("the name is global", error_code(lambda: other.create_bucket(Bucket="photos")), "BucketAlreadyExists")
    check("creating an owned bucket again succeeds (as in us-east-1)", error_code(lambda: c.create_bucket(Bucket="photos")), None)
    check("bucket naming rules", error_code(lambda: c.create_bucket(Bucket="Bad_Name")), "InvalidBucketName")

    body = os.urandom(3_000_000)
    c.put_object(Bucket="photos", Key="2026/cat.jpg", Body=body)
    for k in ["2026/dog.jpg", "2025/old.jpg", "readme.txt"]:
        c.put_object(Bucket="photos", Key=k, Body=k.encode())
    path = os.path.join(work, "file.bin")
    with open(path, "wb") as f:
        # Past the SDK's 8 MiB threshold: a multipart upload of 3 parts, sent at once.
        f.write(os.urandom(21_000_000))
    c.upload_file(path, "photos", "files/file.bin")  # the SDK's transfer manager
    got = os.path.join(work, "got.bin")
    c.download_file("photos", "files/file.bin", got)
    check("multipart upload_file, download_file", open(got, "rb").read() == open(path, "rb").read(), True)
    whole = open(path, "rb").read()
    parts = [whole[i : i + 8 * 1024 * 1024] for i in range(0, len(whole), 8 * 1024 * 1024)]
    want_etag = '"%s-%d"' % (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest(), len(parts))
    check("a multipart ETag is the MD5 of the parts' MD5s and their count", c.head_object(Bucket="photos", Key="files/file.bin")["ETag"], want_etag)

    # Multipart by hand: parts out of order, a part sent again, the rules.
    u = c.create_multipart_upload(Bucket="photos", Key="mp.bin", ContentType="application/x-mp", Metadata={"k": "v"})["UploadId"]
    five = 5 * 1024 * 1024
    p2 = c.upload_part(Bucket="photos", Key="mp.bin", UploadId=u, PartNumber=2, Body=b"tail")["ETag"]
    c.upload_part(Bucket="photos", Key="mp.bin", UploadId=u, PartNumber=1, Body=b"x" * 10)
    small = [{"PartNumber": 1, "ETag": '"%s"' % hashlib.md5(b"x" * 10).hexdigest()}, {"PartNumber": 2, "ETag": p2}]
    check("a small part but the last", error_code(lambda: c.complete_multipart_upload(
        Bucket="photos", Key="mp.bin", UploadId=u, MultipartUpload={"Parts": small})), "EntityTooSmall")
    first = os.urandom(five)
    p1 = c.upload_part(Bucket="photos", Key="mp.bin", UploadId=u, PartNumber=1, Body=first)["ETag"]
    check("a part's ETag is its MD5", p1, '"%s"' % hashlib.md5(first).hexdigest())
    c.upload_part(Bucket="photos", Key="mp.bin", UploadId=u, PartNumber=3, Body=b"not listed")
    listed = c.list_parts(Bucket="photos", Key="mp.bin", UploadId=u)["Parts"]
    check("list parts", [(p["PartNumber"], p["Size"]) for p in listed], [(1, five), (2, 4), (3, 10)])
    ups = c.list_multipart_uploads(Bucket="photos").get("Uploads", [])
    check("list multipart uploads", [(x["Key"], x["UploadId"]) for x in ups], [("mp.bin", u)])
    check("parts out of order", error_code(lambda: c.complete_multipart_upload(Bucket="photos", Key="mp.bin", UploadId=u,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": p2}, {"PartNumber": 1, "ETag": p1}]})), "InvalidPartOrder")
    check("a wrong part ETag", error_code(lambda: c.complete_multipart_upload(Bucket="photos", Key="mp.bin", UploadId=u,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p2}]})), "InvalidPart")
    c.complete_multipart_upload(Bucket="photos", Key="mp.bin", UploadId=u,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
    g = c.get_object(Bucket="photos", Key="mp.bin")
    check("the completed object: the listed parts, headers kept", (g["Body"].read() == first + b"tail", g["ContentType"], g["Metadata"]),
        (True, "application/x-mp", {"k": "v"}))
    check("a completed upload is gone", error_code(lambda: c.list_parts(Bucket="photos", Key="mp.bin", UploadId=u)), "NoSuchUpload")
    a = c.create_multipart_upload(Bucket="photos", Key="gone.bin")["UploadId"]
    c.upload_part(Bucket="photos", Key="gone.bin", UploadId=a, PartNumber=1, Body=b"1")
    c.abort_multipart_upload(Bucket="photos", Key="gone.bin", UploadId=a)
    check("an aborted upload is gone", error_code(lambda: c.upload_part(Bucket="photos", Key="gone.bin", UploadId=a, PartNumber=2, Body=b"2")), "NoSuchUpload")
    check("nor stored", error_code(lambda: c.head_object(Bucket="photos", Key="gone.bin")), "404")
    c.delete_object(Bucket="photos", Key="mp.bin")
    check("get", c.get_object(Bucket="photos", Key="2026/cat.jpg")["Body"].read() == body, True)
    r = c.get_object(Bucket="photos", Key="2026/cat.jpg", Range="bytes=1000-1999")
    check("range", (r["Body"].read() == body[1000:2000], r["ContentRange"]), (True, "bytes 1000-1999/3000000"))
    r = c.get_object(Bucket="photos", Key="2026/cat.jpg", Range="bytes=-10")
    check("suffix range", r["Body"].read() == body[-10:], True)
    check("range past the end", error_code(lambda: c.get_object(Bucket="photos", Key="readme.txt", Range="bytes=500-")), "InvalidRange")
    check("head", c.head_object(Bucket="photos", Key="readme.txt")["ContentLength"], len("readme.txt"))
    check("the ETag is the MD5", c.head_object(Bucket="photos", Key="2026/cat.jpg")["ETag"], '"%s"' % hashlib.md5(body).hexdigest())
    c.put_object(
        Bucket="photos", Key="meta.txt", Body=b"with headers", ContentType="text/plain", ContentLanguage="de",
        ContentDisposition='attachment; filename="m.txt"', CacheControl="max-age=60", ContentEncoding="identity",
        Metadata={"Camera": "x100", "lens": "23mm"},
    )
    h = c.head_object(Bucket="photos", Key="meta.txt")
    check(
        "content headers and user metadata are kept",
        (h["ContentType"], h["ContentLanguage"], h["ContentDisposition"], h["CacheControl"], h["Metadata"]),
        ("text/plain", "de", 'attachment; filename="m.txt"', "max-age=60", {"camera": "x100", "lens": "23mm"}),
    )
    g = c.get_object(Bucket="photos", Key="meta.txt", ResponseContentType="application/x-custom")
    check("response-content-type overrides", (g["ContentType"], g["Metadata"]["lens"]), ("application/x-custom", "23mm"))
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    check("a wrong Content-MD5", error_code(lambda: c.put_object(Bucket="photos", Key="bad.txt", Body=b"x", ContentMD5=wrong)), "BadDigest")
    check("stores nothing", error_code(lambda: c.head_object(Bucket="photos", Key="bad.txt")), "404")
    right = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    c.put_object(Bucket="photos", Key="good.txt", Body=b"x", ContentMD5=right)
    for k in ["meta.txt", "good.txt"]:
        c.delete_object(Bucket="photos", Key=k)
    check("missing key", error_code(lambda: c.get_object(Bucket="photos", Key="nope")), "NoSuchKey")
    check("missing bucket", error_code(lambda: c.get_object(Bucket="nobucket", Key="x")), "NoSuchBucket")

    l = c.list_objects_v2(Bucket="photos", Delimiter="/")
    check(
        "list v2 with a delimiter",
        ([o["Key"] for o in l.get("Contents", [])], [p["Prefix"] for p in l.get("CommonPrefixes", [])]),
        (["readme.txt"], ["2025/", "2026/", "files/"]),
    )
    keys, token_ = [], None
    while True:
        kw = {"ContinuationToken": token_} if token_ else {}
        page = c.list_objects_v2(Bucket="photos", MaxKeys=2, **kw)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token_ = page["NextContinuationToken"]
    check("list v2 in pages of 2", keys, ["2025/old.jpg", "2026/cat.jpg", "2026/dog.jpg", "files/file.bin", "readme.txt"])
    l = c.list_objects_v2(Bucket="photos", Prefix="2026/", StartAfter="2026/cat.jpg")
    check("prefix and start-after", [o["Key"] for o in l["Contents"]], ["2026/dog.jpg"])
    l = c.list_objects(Bucket="photos", Delimiter="/", MaxKeys=2)
    check("list v1 cut by max-keys", (l["IsTruncated"], l.get("NextMarker")), (True, "2026/"))
    l = c.list_objects(Bucket="photos", Delimiter="/", Marker="2026/")
    check("list v1 from a marker past a prefix", [p["Prefix"] for p in l.get("CommonPrefixes", [])], ["files/"])

    # Copies: through the destination's pipeline, independent of the source.
    c.create_bucket(Bucket="copies")
    r = c.copy_object(Bucket="copies", Key="cat.jpg", CopySource={"Bucket": "photos", "Key": "2026/cat.jpg"})
    check("copy: the ETag is the content's MD5", r["CopyObjectResult"]["ETag"], '"%s"' % hashlib.md5(body).hexdigest())
    c.copy_object(Bucket="copies", Key="meta.txt", CopySource={"Bucket": "photos", "Key": "readme.txt"},
                  MetadataDirective="REPLACE", ContentType="text/x-new", Metadata={"new": "1"})
    h = c.head_object(Bucket="copies", Key="meta.txt")
    check("copy with REPLACE", (h["ContentType"], h["Metadata"]), ("text/x-new", {"new": "1"}))
    check("a copy onto itself without REPLACE", error_code(lambda: c.copy_object(
        Bucket="copies", Key="cat.jpg", CopySource={"Bucket": "copies", "Key": "cat.jpg"})), "InvalidRequest")
    check("copy-source-if-match", error_code(lambda: c.copy_object(Bucket="copies", Key="x",
        CopySource={"Bucket": "photos", "Key": "readme.txt"}, CopySourceIfMatch='"nope"')), "PreconditionFailed")
    check("another tenant's source", error_code(lambda: other.copy_object(Bucket="photos", Key="x",
        CopySource={"Bucket": "photos", "Key": "readme.txt"})), "AccessDenied")
    c.delete_object(Bucket="photos", Key="2026/dog.jpg")
    c.put_object(Bucket="photos", Key="2026/dog.jpg", Body=b"2026/dog.jpg")
    check("the copy outlives a change of its source", c.get_object(Bucket="copies", Key="cat.jpg")["Body"].read() == body, True)

    # Conditional requests.
    tag = c.head_object(Bucket="photos", Key="readme.txt")["ETag"]
    check("if-match", c.get_object(Bucket="photos", Key="readme.txt", IfMatch=tag)["Body"].read(), b"readme.txt")
    check("if-match fails", error_code(lambda: c.get_object(Bucket="photos", Key="readme.txt", IfMatch='"x"')), "PreconditionFailed")
    check("if-none-match on a read", error_code(lambda: c.get_object(Bucket="photos", Key="readme.txt", IfNoneMatch=tag)), "304")
    check("if-modified-since", error_code(lambda: c.get_object(Bucket="photos", Key="readme.txt",
        IfModifiedSince=datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc))), "304")
    check("if-unmodified-since", error_code(lambda: c.get_object(Bucket="photos", Key="readme.txt",
        IfUnmodifiedSince=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc))), "PreconditionFailed")
    check("put if-none-match * on an existing key", error_code(lambda: c.put_object(Bucket="photos", Key="readme.txt",
        Body=b"no", IfNoneMatch="*")), "PreconditionFailed")

    # Many keys at once.
    for i in range(5):
        c.put_object(Bucket="copies", Key=f"many/{i}", Body=b"m")
    r = c.delete_objects(Bucket="copies", Delete={"Objects": [{"Key": f"many/{i}"} for i in range(5)] + [{"Key": "never"}]})
    check("delete objects", sorted(d["Key"] for d in r["Deleted"]), sorted([f"many/{i}" for i in range(5)] + ["never"]))
    r = c.delete_objects(Bucket="copies", Delete={"Objects": [{"Key": "cat.jpg"}, {"Key": "meta.txt"}], "Quiet": True})
    check("quietly", r.get("Deleted", []), [])
    c.delete_bucket(Bucket="copies")

    check("another tenant cannot read", error_code(lambda: other.get_object(Bucket="photos", Key="readme.txt")), "AccessDenied")
    check("nor write", error_code(lambda: other.put_object(Bucket="photos", Key="x", Body=b"1")), "AccessDenied")
    forged = client(s3_port, key.split()[0] + " " + "x" * 40)
    check("a bad signature", error_code(lambda: forged.list_buckets()), "SignatureDoesNotMatch")
    unknown = client(s3_port, "SLUNOSUCHKEY00000000 " + "x" * 40)
    check("an unknown key", error_code(lambda: unknown.list_buckets()), "InvalidAccessKeyId")
    reader = client(s3_port, revoked_key)
    check("a read key reads", len(reader.list_buckets()["Buckets"]), 1)
    check("but does not write", error_code(lambda: reader.put_object(Bucket="photos", Key="x", Body=b"1")), "AccessDenied")
    # A request signed with a clock 20 minutes off is refused, as S3 does past 15.
    real_now = botocore.auth.get_current_datetime
    for minutes in (-20, 20):
        botocore.auth.get_current_datetime = lambda *a, m=minutes, **k: real_now(*a, **k) + datetime.timedelta(minutes=m)
        try:
            check(f"a request signed {minutes:+d} minutes off", error_code(lambda: c.list_buckets()), "RequestTimeTooSkewed")
        finally:
            botocore.auth.get_current_datetime = real_now
    botocore.auth.get_current_datetime = lambda *a, **k: real_now(*a, **k) + datetime.timedelta(minutes=10)
    try:
        check("ten minutes off is within S3's 15", error_code(lambda: c.list_buckets()), None)
    finally:
        botocore.auth.get_current_datetime = real_now
    admin(data, "s3-key", "revoke", revoked_key.split()[0])
    time.sleep(1.5)
    check("a revoked key is refused within a second", error_code(lambda: reader.list_buckets()), "InvalidAccessKeyId")

    # A body of unknown length (Transfer-Encoding: chunked, no Content-Length), as
    # `curl -T -` sends a pipe to a presigned URL: stored if it is at most 8 MiB.
    def put_chunked(key, data):
        url = c.generate_presigned_url("put_object", Params={"Bucket": "photos", "Key": key}, ExpiresIn=300)
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        pieces = (data[i : i + 65536] for i in range(0, len(data), 65536))
        conn.request("PUT", u.path + "?" + u.query, body=pieces, encode_chunked=True)
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        conn.close()
        return r.status, text

    piped = os.urandom(3_000_000)
    check("a chunked PUT without Content-Length is stored", put_chunked("piped.bin", piped)[0], 200)
    check("and reads back", c.get_object(Bucket="photos", Key="piped.bin")["Body"].read() == piped, True)
    status, text = put_chunked("too-long.bin", os.urandom(9 * 1024 * 1024))
    check("one over 8 MiB is refused, naming the header", (status, "MissingContentLength" in text), (411, True))
    check("and not stored", error_code(lambda: c.head_object(Bucket="photos", Key="too-long.bin")), "404")
    c.delete_object(Bucket="photos", Key="piped.bin")

    # The same object through the native API.
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/objects/photos/2026/cat.jpg/content", headers={"Authorization": f"Bearer {token}"}
    )
    check("written through S3, read through the native API", urllib.request.urlopen(req).read() == body, True)

    # A bucket's pipeline, set through the native API, is what S3 writes go through.
    writer = admin(data, "token", "create", "--tenant", "acme", "--scope", "write")

    def native(method, path, body=None):
        r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body,
                                   headers={"Authorization": f"Bearer {writer}"})
        return json.loads(urllib.request.urlopen(r).read() or b"null")

    native("PUT", "/v1/pipelines/fast", b'{"compress":"lz4","chunk_size":"1MiB"}')
    check("PUT /v1/buckets/photos sets its pipeline",
          native("PUT", "/v1/buckets/photos", b'{"pipeline":"fast"}')["pipeline"], "fast")
    c.put_object(Bucket="photos", Key="fast.txt", Body=b"x" * 100_000)
    check("an S3 write goes through the bucket's pipeline",
          native("GET", "/v1/objects?prefix=photos/fast.txt")["objects"][0]["pipeline"], "fast")
    c.delete_object(Bucket="photos", Key="fast.txt")

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    check("S3 requests are counted, labelled by face",
          any(l.startswith("sluice_http_requests_total{") and 'face="s3"' in l for l in metrics.splitlines()), True)

    check("a bucket with objects is not deleted", error_code(lambda: c.delete_bucket(Bucket="photos")), "BucketNotEmpty")
    for k in keys:
        c.delete_object(Bucket="photos", Key=k)
    c.delete_object(Bucket="photos", Key="never-was")  # S3: not an error
    c.delete_bucket(Bucket="photos")
    check("deleted", c.list_buckets()["Buckets"], [])
    virtual_hosted(s3_port, key)
    aws_cli(s3_port, key, work)


def virtual_hosted(s3_port, key):
    """--s3-domain: BUCKET.DOMAIN names the bucket; the domain itself and the IP stay path style."""
    resolve_test_domain()
    access, secret = key.split()
    v = boto3.client(
        "s3",
        endpoint_url=f"http://{DOMAIN}:{s3_port}",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )
    v.create_bucket(Bucket="hosted")
    v.put_object(Bucket="hosted", Key="a/b.txt", Body=b"virtual")
    check("virtual-hosted style: put, then get", v.get_object(Bucket="hosted", Key="a/b.txt")["Body"].read(), b"virtual")
    check("virtual-hosted style: list",
          [o["Key"] for o in v.list_objects_v2(Bucket="hosted")["Contents"]], ["a/b.txt"])
    p = client(s3_port, key)
    check("the same bucket path style on the IP address", p.get_object(Bucket="hosted", Key="a/b.txt")["Body"].read(),
          b"virtual")
    v.delete_object(Bucket="hosted", Key="a/b.txt")
    v.delete_bucket(Bucket="hosted")
    check("deleted virtual-hosted style", error_code(lambda: p.head_bucket(Bucket="hosted")), "404")


def aws_cli(s3_port, key, work):
    """The AWS CLI at its defaults: sync a tree up and back, multipart included."""
    aws = os.environ.get("AWS_CLI")
    if not aws:
        print("skip the AWS CLI: AWS_CLI is not set")
        return
    access, secret = key.split()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_CA_BUNDLE", None)
    def run(*args):
        return subprocess.run([aws, "--endpoint-url", f"http://127.0.0.1:{s3_port}", "s3", *args],
                              env=env, capture_output=True, text=True)
    src = os.path.join(work, "tree")
    os.makedirs(os.path.join(src, "a", "b"))
    files = {"big.bin": os.urandom(20_000_000), "a/x.txt": b"x", "a/b/y.txt": b"y" * 1000}
    for name, data in files.items():
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
    check("aws s3 mb", run("mb", "s3://cli").returncode, 0)
    r = run("sync", src, "s3://cli/tree")
    check("aws s3 sync up (the 20 MB file in parts)", (r.returncode, r.stderr[-300:]), (0, ""))
    listed = sorted(l.split()[-1] for l in run("ls", "--recursive", "s3://cli").stdout.splitlines())
    check("aws s3 ls --recursive", listed, sorted(f"tree/{n}" for n in files))
    back = os.path.join(work, "back")
    check("aws s3 sync down", run("sync", "s3://cli/tree", back).returncode, 0)
    for name, data in files.items():
        check(f"  {name} came back whole", open(os.path.join(back, name), "rb").read() == data, True)
    check("aws s3 sync again sends nothing", run("sync", src, "s3://cli/tree").stdout.strip(), "")
    check("aws s3 rm --recursive", run("rm", "--recursive", "s3://cli").returncode, 0)
    check("aws s3 rb", run("rb", "s3://cli").returncode, 0)


if __name__ == "__main__":
    main()
