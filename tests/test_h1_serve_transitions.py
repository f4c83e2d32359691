"""Walk every (serve state, driver input) pair: the code must do exactly
what SERVE_TRANSITIONS says, and a missing pair must close and raise."""

import itertools

import pytest

from askr.http.errors import LocalProtocolError
from askr.http.h1 import SERVE_TRANSITIONS, H1Connection, ServeState

REQUEST = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"

INPUTS = {
    "simple_response": lambda c: c.simple_response(200, [], b"x"),
    "start_response": lambda c: c.start_response(200, [b"Content-Length: 1"]),
    "send_body": lambda c: c.send_body(b""),
    "file_body": lambda c: c.file_body(0),
    "end_response": lambda c: c.end_response(b"x"),
    "request": lambda c: c.receive_data(REQUEST) + c.next_events(),
}


def conn_in(state):
    conn = H1Connection()
    if state is ServeState.IDLE:
        return conn
    conn.receive_data(REQUEST)
    if state is ServeState.SENDING_BODY:
        conn.start_response(200, [b"Content-Length: 1"])
    assert conn.state is state
    return conn


def test_table_names_only_real_inputs():
    assert {name for _, name in SERVE_TRANSITIONS} == set(INPUTS)


@pytest.mark.parametrize(("state", "name"),
                         list(itertools.product(ServeState, sorted(INPUTS))))
def test_every_pair(state, name):
    conn = conn_in(state)
    expected = SERVE_TRANSITIONS.get((state, name))

    if name == "request":
        # Requests are queued, not refused, while one is being answered.
        INPUTS[name](conn)
        assert conn.state is (expected or state)
        return
    if expected is None:
        with pytest.raises(LocalProtocolError):
            INPUTS[name](conn)
        assert conn.closing
    else:
        INPUTS[name](conn)
        assert conn.state is expected
        assert not conn.closing
