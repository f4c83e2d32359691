"""Development certificates (`askr cert`) and certificate checks (config-check).

The generated certificate is self-signed, X.509 v3, valid one year, with a
subjectAltName entry per host (an IP SAN for IP literals): modern clients
ignore the common name, so without SANs HTTPS fails even when trusted.  The
key is ECDSA P-256: every current TLS client accepts it and it is made in
milliseconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EXPIRY_WARNING = dt.timedelta(days=14)  # time enough to renew by hand


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def generate(out_dir: str | os.PathLike[str], hosts: list[str],
             days: int = 365) -> tuple[Path, Path]:
    """Write cert.pem and key.pem (mode 0600) into out_dir; return their paths."""
    if not hosts:
        raise ValueError("at least one host name or IP is needed")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Askr development"),
    ])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A minute of slack for clocks that disagree slightly.
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )

    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def check_pair(cert_path: str, key_path: str, chain_path: str | None = None,
               now: dt.datetime | None = None) -> list[tuple[str, str, str]]:
    """Problems with a certificate/key pair as (key, severity, message)."""
    now = now or dt.datetime.now(dt.UTC)
    out: list[tuple[str, str, str]] = []

    try:
        certs = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    except ValueError as exc:
        return [("cert", "error", f"{cert_path} is not a PEM certificate: {exc}")]
    cert = certs[0]

    if cert.version != x509.Version.v3:
        out.append(("cert", "error", (
            f"{cert_path} is an X.509 {cert.version.name} certificate; it has "
            "no extensions (no subjectAltName), clients reject it. Reissue it "
            "as v3 (askr cert makes one)")))
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < not_before:
        out.append(("cert", "error",
                    f"not valid before {not_before.isoformat()} (check the clock)"))
    if now > not_after:
        out.append(("cert", "error", f"expired on {not_after.isoformat()}; renew it"))
    elif now + EXPIRY_WARNING > not_after:
        out.append(("cert", "warning", (
            f"expires on {not_after.isoformat()}, in less than "
            f"{EXPIRY_WARNING.days} days; renew it")))

    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(),
                                                 password=None)
    except TypeError:
        out.append(("key", "error", (
            f"{key_path} is encrypted; askr needs an unencrypted key readable "
            "only by its user")))
    except ValueError as exc:
        out.append(("key", "error", f"{key_path} is not a PEM private key: {exc}"))
    else:
        if _spki(key.public_key()) != _spki(cert.public_key()):
            out.append(("key", "error", (
                f"{key_path} does not match the certificate {cert_path} "
                "(different public key)")))

    chain = certs[1:]
    if chain_path:
        try:
            chain += x509.load_pem_x509_certificates(Path(chain_path).read_bytes())
        except ValueError as exc:
            out.append(("chain", "error",
                        f"{chain_path} is not a PEM certificate chain: {exc}"))
            return out
    issuer = cert.issuer.rfc4514_string()
    if chain and chain[0].subject != cert.issuer:
        out.append(("chain", "warning", (
            f"first chain certificate ({chain[0].subject.rfc4514_string()}) did "
            f"not issue the certificate (issuer {issuer})")))
    if not chain and cert.issuer != cert.subject:
        out.append(("chain", "warning", (
            f"no intermediate certificates: clients that lack the issuer "
            f"{issuer} will fail; set chain")))
    return out
