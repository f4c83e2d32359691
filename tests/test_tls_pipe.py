"""TLSPipe and the server context, bytes only: the client is an ssl.SSLObject
over MemoryBIOs, so both ends run in this process without sockets."""

from __future__ import annotations

import datetime
import ipaddress
import random
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from askr.tls import (
    PLAIN_HTTP_REPLY,
    ReloadableContext,
    TLSConfigError,
    TLSError,
    TLSPipe,
    TLSState,
    build_context,
)

# -- certificates ---------------------------------------------------------------


@dataclass
class CertFiles:
    ca: Path  # CA certificate, for the client to verify against
    cert: Path  # leaf followed by the CA (chain included)
    key: Path
    leaf_der: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certs(directory: Path, cn: str = "localhost") -> CertFiles:
    """Write a throwaway CA and a leaf for localhost/127.0.0.1 into directory."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"askr test CA {cn}"))
        .issuer_name(_name(f"askr test CA {cn}"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName(cn), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    files = CertFiles(
        ca=directory / "ca.pem",
        cert=directory / "cert.pem",
        key=directory / "key.pem",
        leaf_der=leaf.public_bytes(serialization.Encoding.DER),
    )
    files.ca.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    files.key.write_bytes(
        key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server_ctx(certs: CertFiles) -> ssl.SSLContext:
    return build_context(str(certs.cert), str(certs.key))


# -- a client end over MemoryBIO ------------------------------------------------


def client_context(certs: CertFiles, alpn: list[str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


class Client:
    def __init__(
        self,
        ctx: ssl.SSLContext,
        session: ssl.SSLSession | None = None,
        hostname: str = "localhost",
    ) -> None:
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(
            self.inc, self.out, server_hostname=hostname, session=session
        )

    def handshake_step(self) -> bool:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def read_all(self) -> bytes:
        chunks = []
        try:
            while True:
                chunks.append(self.obj.read(65536))
        except ssl.SSLWantReadError:
            pass
        return b"".join(chunks)


def handshake(client: Client, pipe: TLSPipe) -> None:
    """Shuttle bytes until both ends finished the handshake (bounded)."""
    for _ in range(10):
        client_done = client.handshake_step()
        data = client.out.read()
        if data:
            plain, back = pipe.feed(data)
            assert plain == b""
            client.inc.write(back)
        if client_done and pipe.state is TLSState.WRAPPED:
            return
    raise AssertionError("handshake did not finish in 10 rounds")


def exchange(client: Client, pipe: TLSPipe, request: bytes, reply: bytes) -> bytes:
    """Client sends request, server answers reply; return what the client read."""
    client.obj.write(request)
    plain, back = pipe.feed(client.out.read())
    assert plain == request
    client.inc.write(back + pipe.wrap(reply))
    return client.read_all()


# -- tests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "offer,expected",
    [
        (["h2", "http/1.1"], "h2"),
        (["http/1.1"], "http/1.1"),
        (["spdy/3", "h3"], None),  # no overlap: go on without ALPN
        (None, None),
    ],
)
def test_tls_handshake_selects_alpn(
    certs: CertFiles, server_ctx: ssl.SSLContext, offer: list[str] | None,
    expected: str | None,
) -> None:
    client = Client(client_context(certs, offer))
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)

    assert pipe.alpn == expected
    assert client.obj.selected_alpn_protocol() == expected
    assert pipe.server_name == "localhost"
    assert pipe.version == "TLSv1.3"
    assert exchange(client, pipe, b"ping", b"pong") == b"pong"


def test_tls_handshake_byte_by_byte(certs: CertFiles, server_ctx: ssl.SSLContext):
    # Records split at every byte must still assemble (SSLWantReadError path).
    client = Client(client_context(certs, ["h2"]))
    pipe = TLSPipe(server_ctx)
    client.handshake_step()
    hello = client.out.read()
    sent = b""
    for i in range(len(hello)):
        plain, back = pipe.feed(hello[i : i + 1])
        assert plain == b""
        sent += back
    assert sent  # the server flight came once the ClientHello was complete
    client.inc.write(sent)
    handshake(client, pipe)
    assert pipe.alpn == "h2"


def test_tls_chain_is_sent_and_verifies(certs: CertFiles, server_ctx: ssl.SSLContext):
    client = Client(client_context(certs, None))
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)
    assert client.obj.getpeercert(binary_form=True) == certs.leaf_der


def test_tls12_uses_ecdhe_aead(certs: CertFiles, server_ctx: ssl.SSLContext):
    ctx = client_context(certs, ["h2"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    client = Client(ctx)
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)
    assert pipe.version == "TLSv1.2"
    assert pipe.cipher is not None
    assert pipe.cipher.startswith("ECDHE-")
    assert "GCM" in pipe.cipher or "CHACHA20" in pipe.cipher


def test_tls11_client_is_refused(certs: CertFiles, server_ctx: ssl.SSLContext):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Security level 0 lets this OpenSSL still *offer* TLS 1.1.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    client = Client(ctx)
    client.handshake_step()
    hello = client.out.read()
    assert hello[:1] == b"\x16" and hello[9:11] == b"\x03\x02"  # TLS 1.1 hello

    pipe = TLSPipe(server_ctx)
    with pytest.raises(TLSError) as err:
        pipe.feed(hello)
    assert err.value.reason.startswith("handshake failed:")
    assert "protocol" in err.value.reason
    assert err.value.to_send[:1] == b"\x15"  # an alert record for the client
    assert pipe.state is TLSState.CLOSED


@pytest.mark.parametrize(
    "first", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"POST /a HTTP/1.1\r\n", b"P"]
)
def test_tls_plain_http_is_detected(server_ctx: ssl.SSLContext, first: bytes):
    pipe = TLSPipe(server_ctx)
    with pytest.raises(TLSError) as err:
        pipe.feed(first)
    assert err.value.reason == "plain HTTP on TLS port"
    assert err.value.to_send == PLAIN_HTTP_REPLY
    head, _, body = PLAIN_HTTP_REPLY.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Length: %d" % len(body) in head
    assert pipe.state is TLSState.CLOSED
    assert pipe.feed(b"more") == (b"", b"")


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\x03garbage",
        b"\x16\x03\x01\x00\x05hello",  # handshake record with a bogus body
        b"\x16\x03\x01\x00\x04\xff\xff\xff\xff",
    ],
)
def test_tls_garbage_gives_one_clean_error(server_ctx: ssl.SSLContext, garbage):
    pipe = TLSPipe(server_ctx)
    with pytest.raises(TLSError) as err:
        pipe.feed(garbage)
    assert err.value.reason.startswith("handshake failed:")
    assert "\n" not in err.value.reason
    assert pipe.state is TLSState.CLOSED
    assert pipe.feed(b"\x16\x03\x01") == (b"", b"")


def test_tls_eof_during_handshake_is_an_error(server_ctx: ssl.SSLContext):
    pipe = TLSPipe(server_ctx)
    pipe.feed(b"\x16\x03\x01")
    with pytest.raises(TLSError, match="handshake failed"):
        pipe.feed(b"")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_tls_session_resumption(
    certs: CertFiles, server_ctx: ssl.SSLContext, version: ssl.TLSVersion
) -> None:
    ctx = client_context(certs, ["h2"])
    ctx.maximum_version = version

    first = Client(ctx)
    pipe1 = TLSPipe(server_ctx)
    handshake(first, pipe1)
    # TLS 1.3 tickets arrive after the handshake; one exchange delivers them.
    assert exchange(first, pipe1, b"a", b"b") == b"b"
    assert not pipe1.session_reused
    session = first.obj.session
    assert session is not None and session.has_ticket

    second = Client(ctx, session=session)
    pipe2 = TLSPipe(server_ctx)
    handshake(second, pipe2)
    assert pipe2.session_reused
    assert second.obj.session_reused
    assert exchange(second, pipe2, b"c", b"d") == b"d"


def test_tls_large_write_round_trip(certs: CertFiles, server_ctx: ssl.SSLContext):
    client = Client(client_context(certs, ["h2"]))
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)
    body = bytes(range(256)) * 4096  # 1 MiB, many 16 KiB records
    client.inc.write(pipe.wrap(memoryview(body)))
    assert client.read_all() == body

    client.obj.write(body)
    plain, _ = pipe.feed(client.out.read())
    assert plain == body


def test_tls_close_notify_both_ways(certs: CertFiles, server_ctx: ssl.SSLContext):
    # Server closes: the client sees a clean end of data.
    client = Client(client_context(certs, ["h2"]))
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)
    alert = pipe.close()
    assert alert and pipe.state is TLSState.SHUTDOWN
    client.inc.write(alert)
    assert client.obj.read(10) == b""  # clean end of data, not an error
    with pytest.raises(TLSError):
        pipe.wrap(b"late")

    # Client closes: the server answers close_notify and ends.
    client = Client(client_context(certs, ["h2"]))
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)
    with pytest.raises(ssl.SSLWantReadError):
        client.obj.unwrap()
    plain, back = pipe.feed(client.out.read())
    assert plain == b"" and back
    client.inc.write(back)
    client.obj.unwrap()  # completes: the server answered with close_notify
    assert pipe.state is TLSState.CLOSED and not pipe.truncated


def test_tls_eof_without_close_notify_is_truncation(
    certs: CertFiles, server_ctx: ssl.SSLContext
) -> None:
    client = Client(client_context(certs, ["h2"]))
    pipe = TLSPipe(server_ctx)
    handshake(client, pipe)
    client.obj.write(b"partial")
    assert pipe.feed(client.out.read())[0] == b"partial"
    # OpenSSL may queue an alert for the vanished peer; no plaintext comes.
    assert pipe.feed(b"")[0] == b""
    assert pipe.state is TLSState.CLOSED and pipe.truncated
    assert pipe.feed(b"late") == (b"", b"")


def test_tls_context_policy(server_ctx: ssl.SSLContext):
    assert server_ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert server_ctx.options & ssl.OP_NO_COMPRESSION
    assert server_ctx.options & ssl.OP_NO_RENEGOTIATION
    assert not server_ctx.options & ssl.OP_NO_TICKET
    names = {c["name"] for c in server_ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names and all(n.startswith("ECDHE-") for n in names)
    assert all(("GCM" in n) or ("CHACHA20" in n) for n in names)


def test_tls_bad_files_raise_config_error(tmp_path: Path, certs: CertFiles):
    with pytest.raises(TLSConfigError, match="not readable"):
        build_context(str(tmp_path / "missing.pem"), str(certs.key))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a pem file\n")
    with pytest.raises(TLSConfigError, match="load failed"):
        build_context(str(bad), str(certs.key))


def test_tls_cert_reload_new_connections_only(tmp_path: Path, certs: CertFiles):
    (tmp_path / "a").mkdir()
    first = make_certs(tmp_path / "a")
    live_cert, live_key = tmp_path / "live-cert.pem", tmp_path / "live-key.pem"
    live_cert.write_bytes(first.cert.read_bytes())
    live_key.write_bytes(first.key.read_bytes())

    holder = ReloadableContext(str(live_cert), str(live_key))
    assert holder.reload_if_changed() is False
    old_pipe = TLSPipe(holder.context)  # accepted before the renewal

    (tmp_path / "b").mkdir()
    renewed = make_certs(tmp_path / "b")
    live_cert.write_bytes(renewed.cert.read_bytes())
    live_key.write_bytes(renewed.key.read_bytes())
    assert holder.reload_if_changed() is True

    old_client = Client(client_context(first, None))
    handshake(old_client, old_pipe)
    assert old_client.obj.getpeercert(binary_form=True) == first.leaf_der

    new_client = Client(client_context(renewed, None))
    handshake(new_client, TLSPipe(holder.context))
    assert new_client.obj.getpeercert(binary_form=True) == renewed.leaf_der

    # A broken renewal keeps the working context.
    live_key.write_text("truncated\n")
    current = holder.context
    with pytest.raises(TLSConfigError):
        holder.reload_if_changed()
    assert holder.context is current


@pytest.fixture(scope="module")
def client_hello(certs: CertFiles) -> bytes:
    client = Client(client_context(certs, ["h2", "http/1.1"]))
    client.handshake_step()
    return client.out.read()


# A mutated SNI that is not ASCII makes Python's SNI hook print an
# "unraisable" traceback before OpenSSL fails the handshake; that is expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_mutated_client_hello_gives_only_tls_error(
    server_ctx: ssl.SSLContext, client_hello: bytes
) -> None:
    rnd = random.Random(11)
    failures = 0
    for _ in range(400):
        data = bytearray(client_hello)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        pipe = TLSPipe(server_ctx)
        try:
            pipe.feed(bytes(data))
            pipe.feed(b"")
        except TLSError as exc:
            failures += 1
            assert "\n" not in exc.reason
            assert pipe.state is TLSState.CLOSED
    assert failures == 400  # every run ends: bad hello, or EOF mid-handshake
