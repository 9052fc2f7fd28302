#!/usr/bin/env python3
"""A 1 GiB upload or download through boto3's CRT transfer manager (the AWS
Common Runtime, awscrt: C, parallel ranged requests and parts, CRC32
checksums), the S3 client AWS recommends for throughput, at its defaults.
Usage: s3_crt.py up FILE BUCKET KEY | down BUCKET KEY FILE
Env: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY."""
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def main():
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    crt = TransferConfig(preferred_transfer_client="crt")
    op = sys.argv[1]
    if op == "up":
        client.upload_file(sys.argv[2], sys.argv[3], sys.argv[4], Config=crt)
    elif op == "down":
        client.download_file(sys.argv[2], sys.argv[3], sys.argv[4], Config=crt)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
