"""What must never ride in a job's record (runtime env, metadata, entrypoint): secret names, values and URIs."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlsplit

# Words of a variable or query-parameter name that say it holds a credential (AWS_SECRET_ACCESS_KEY, GH_TOKEN,
# DB_PASSWORD, AZURE_STORAGE_SAS_TOKEN, X-Amz-Signature, access_key, ...).
SECRET_WORDS = (
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTH",
    "PRIVATE",
    "SAS",
    "SIG",
    "SIGNATURE",
    "COOKIE",
    "CONNECTIONSTRING",
)
SECRET_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIALS")  # APIKEY, GITHUBTOKEN
NOT_SECRET = ("PWD",)  # the shell's working directory, not a password
# Values that are credentials whatever their name: a private key, an AWS access key id, GitHub and Slack tokens.
SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\b(AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abprs]-[A-Za-z0-9-]{10,}"
)


def secret_name(name: str) -> bool:
    """Whether a variable or parameter name says it holds a credential."""
    if name.upper() in NOT_SECRET:
        return False
    words = [w.upper() for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name) if w]
    return any(w in SECRET_WORDS or w.endswith(SECRET_SUFFIXES) for w in words)


def uri_credentials(text: str) -> str:
    """What in a URI (or any URI in a text: a pip line, a study file) is a credential, '' when nothing is: user info
    (s3://KEY:SECRET@bucket, https://TOKEN@host) or a query parameter named like one (?access_key=...&secret_key=...,
    a presigned URL's X-Amz-Signature)."""
    for word in re.split(r"[\s'\"]+", text):
        if "://" in word and (found := _credentials(word)):
            return found
    return ""


def _credentials(uri: str) -> str:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return ""
    if "@" in parts.netloc and (parts.password is not None or parts.username not in ("git", "")):
        return "user info (user:password@ or token@)"
    named = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if secret_name(k)]
    return f"the query parameter {named[0]}=" if named else ""


def secret_value(text: str) -> str:
    """Why a value or a text (a study file) is or holds a credential ('' when it does not look like one): a URI with
    credentials in it, or a key's or token's text."""
    if found := uri_credentials(text):
        return f"a URI with credentials ({found})"
    return "a private key or access token" if SECRET_VALUE.search(text) else ""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or the name localhost (a literal: a DNS name that resolves to 127.0.0.1 is not trusted)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
