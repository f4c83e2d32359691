"""config-check on [tls]: certificates made here with cryptography.

Covers an expired, a not-yet-valid, a soon-expiring, a version-1 and a
mismatched certificate, plus a missing chain file, each through the same
config.check() path `askr config-check` uses.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from askr import certs, config

NOW = dt.datetime.now(dt.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(key, *, start: dt.datetime, end: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1234)
            .not_valid_before(start).not_valid_after(end)
            .sign(key, hashes.SHA256()))


def _tlv(data: bytes, pos: int) -> tuple[int, int]:
    """(start of content, end of element) of the DER element at pos."""
    length = data[pos + 1]
    head = 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
        head += n
    return pos + head, pos + head + length


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _v1_cert(key) -> x509.Certificate:
    """cryptography only builds v3, so drop the version field and re-sign."""
    v3 = _cert(key, start=NOW - dt.timedelta(days=1),
               end=NOW + dt.timedelta(days=90))
    der = v3.public_bytes(serialization.Encoding.DER)
    body, _ = _tlv(der, 0)
    tbs_start, tbs_end = _tlv(der, body)
    tbs = der[tbs_start:tbs_end]
    assert tbs[:5] == bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2
    new_tbs = _der(0x30, tbs[5:])
    alg_end = _tlv(der, tbs_end)[1]
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    full = _der(0x30, new_tbs + der[tbs_end:alg_end]
                + _der(0x03, b"\x00" + signature))
    cert = x509.load_der_x509_certificate(full)
    assert cert.version == x509.Version.v1
    return cert


def _write(tmp: Path, cert: x509.Certificate, key) -> tuple[Path, Path]:
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def _check(tmp: Path, extra: str = "") -> list[str]:
    (tmp / "www").mkdir(exist_ok=True)
    path = tmp / "askr.toml"
    path.write_text('[server]\nroot = "www"\nlisten = ["127.0.0.1:0"]\n'
                    '[admin]\nlisten = ""\n'
                    '[tls]\ncert = "cert.pem"\nkey = "key.pem"\n'
                    'listen = ["127.0.0.1:0"]\n' + extra)
    return [str(p) for p in config.check(config.load(path))]


def test_config_certs_good_pair_passes(tmp_path):
    certs.generate(tmp_path, ["localhost"])

    assert _check(tmp_path) == []


def test_config_certs_expired_is_an_error(tmp_path):
    key = _key()
    _write(tmp_path, _cert(key, start=NOW - dt.timedelta(days=400),
                           end=NOW - dt.timedelta(days=35)), key)

    found = _check(tmp_path)

    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path}/askr.toml:7: [tls] cert: expired on ")


def test_config_certs_not_yet_valid_is_an_error(tmp_path):
    key = _key()
    _write(tmp_path, _cert(key, start=NOW + dt.timedelta(days=2),
                           end=NOW + dt.timedelta(days=300)), key)

    found = _check(tmp_path)

    assert len(found) == 1
    assert ": [tls] cert: not valid before " in found[0]


def test_config_certs_expiring_soon_is_a_warning(tmp_path):
    key = _key()
    _write(tmp_path, _cert(key, start=NOW - dt.timedelta(days=80),
                           end=NOW + dt.timedelta(days=5)), key)

    found = _check(tmp_path)

    assert len(found) == 1
    assert ": warning: [tls] cert: expires on " in found[0]
    assert "less than 14 days" in found[0]


def test_config_certs_version_1_is_refused(tmp_path):
    key = _key()
    _write(tmp_path, _v1_cert(key), key)

    found = _check(tmp_path)

    assert len(found) == 1
    assert "[tls] cert: " in found[0]
    assert "is an X.509 v1 certificate" in found[0]


def test_config_certs_key_of_another_cert_is_refused(tmp_path):
    key, other = _key(), _key()
    cert_path, key_path = _write(tmp_path, _cert(
        key, start=NOW - dt.timedelta(days=1), end=NOW + dt.timedelta(days=90)),
        other)

    found = _check(tmp_path)

    assert found == [(f"{tmp_path}/askr.toml:8: [tls] key: {key_path} does not "
                     f"match the certificate {cert_path} (different public key)")]


def test_config_certs_missing_chain_file_is_an_error(tmp_path):
    certs.generate(tmp_path, ["localhost"])

    found = _check(tmp_path, 'chain = "chain.pem"\n')

    assert found == [(f"{tmp_path}/askr.toml:10: [tls] chain: file "
                     f"{tmp_path}/chain.pem does not exist")]


def test_config_certs_garbage_key_is_reported(tmp_path):
    certs.generate(tmp_path, ["localhost"])
    (tmp_path / "key.pem").write_text("not a key\n")

    found = _check(tmp_path)

    assert len(found) == 1
    assert "[tls] key: " in found[0] and "is not a PEM private key" in found[0]


@pytest.mark.parametrize("hosts", [["localhost"], ["example.test", "127.0.0.1",
                                                   "::1"]])
def test_config_certs_generated_cert_has_sans_and_v3(tmp_path, hosts):
    cert_path, key_path = certs.generate(tmp_path, hosts)

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    names = [str(v) for v in san.value.get_values_for_type(x509.DNSName)]
    names += [str(v) for v in san.value.get_values_for_type(x509.IPAddress)]

    assert sorted(names) == sorted(hosts)
    assert cert.version == x509.Version.v3
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 364 <= days <= 366
    assert key_path.stat().st_mode & 0o777 == 0o600
