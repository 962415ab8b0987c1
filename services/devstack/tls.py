"""Certificates and credentials of the secure local stack (``scout dev up --secure``).

At first start: a private CA and one server certificate for 127.0.0.1 / localhost (made with
``openssl``), used by both the Kafka SASL_SSL listener (PEM key store) and PostgreSQL
(``ssl=on``); generated passwords for the PostgreSQL owner and for one Kafka SCRAM user per
service plus ``scout-admin`` (tools, tests and the broker itself). Everything lives in the
secure stack's state dir (``tls/``, ``secure.json``, mode 0600) and is reused afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import ServiceUnavailableError
from services.common.kafka_acls import default_user
from services.common.settings import SERVICE_ROLES
from services.devstack.process import require_tool

OPENSSL_HINT = "install OpenSSL (Debian: apt-get install openssl)"
KAFKA_ADMIN = "scout-admin"
CERT_DAYS = "825"


@dataclass(frozen=True)
class TlsFiles:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def server_pem(self) -> Path:
        """Key then certificate chain: Kafka's PEM key store."""
        return self.folder / "server.pem"


@dataclass(frozen=True)
class Credentials:
    postgres_owner: str
    kafka: dict[str, str]  # SCRAM user → password

    @property
    def kafka_admin_password(self) -> str:
        return self.kafka[KAFKA_ADMIN]


def _openssl(*args: str) -> None:
    result = subprocess.run([require_tool("openssl", OPENSSL_HINT), *args],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise ServiceUnavailableError(f"openssl {args[0]} failed: {result.stderr[-1500:]}")


def ensure_certificates(folder: Path) -> TlsFiles:
    """The CA and the loopback server certificate, made once."""
    files = TlsFiles(folder)
    if files.server_pem.exists() and files.ca_cert.exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files.ca_key),
             "-out", str(files.ca_cert), "-days", CERT_DAYS, "-subj", "/CN=scout dev secure CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    csr = folder / "server.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files.server_key),
             "-out", str(csr), "-subj", "/CN=localhost")  # fmt: skip
    ext = folder / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey",
             str(files.ca_key), "-CAcreateserial", "-out", str(files.server_cert), "-days",
             CERT_DAYS, "-extfile", str(ext))  # fmt: skip
    pkcs8 = folder / "server.pk8"  # Kafka's PEM key store wants PKCS#8
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(files.server_key), "-out", str(pkcs8))
    files.server_pem.write_text(
        pkcs8.read_text() + files.server_cert.read_text() + files.ca_cert.read_text()
    )
    for path in (csr, ext, pkcs8):
        path.unlink()
    for path in (files.ca_key, files.server_key, files.server_pem):
        os.chmod(path, 0o600)
    return files


def ensure_credentials(state_dir: Path) -> Credentials:
    path = state_dir / "secure.json"
    if path.exists():
        data = json.loads(path.read_text())
        return Credentials(data["postgres_owner"], dict(data["kafka"]))
    users = [KAFKA_ADMIN, *(default_user(s) for s in SERVICE_ROLES)]
    creds = Credentials(secrets.token_urlsafe(24), {u: secrets.token_urlsafe(24) for u in users})
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"postgres_owner": creds.postgres_owner, "kafka": creds.kafka}, out, indent=2)
    return creds
