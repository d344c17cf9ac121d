from media.g711 import FRAME_BYTES, SILENCE_CODE
from media.jitter import JitterBuffer


def frame(n: int) -> bytes:
    return bytes([n]) * FRAME_BYTES


def test_in_order_chunks_pass_straight_through() -> None:
    jb = JitterBuffer()
    assert [jb.push(i, frame(i)) for i in (1, 2, 3)] == [[frame(1)], [frame(2)], [frame(3)]]


def test_out_of_order_chunks_are_reordered_and_duplicates_dropped() -> None:
    jb = JitterBuffer()
    out = jb.push(1, frame(1)) + jb.push(3, frame(3)) + jb.push(2, frame(2))
    out += jb.push(2, frame(2)) + jb.push(3, frame(3))
    assert out == [frame(1), frame(2), frame(3)]
    assert jb.late == 2


def test_a_lost_chunk_becomes_silence_once_the_buffer_is_full() -> None:
    jb = JitterBuffer(depth=2)
    out = jb.push(1, frame(1))
    for n in (3, 4, 5):
        out += jb.push(n, frame(n))
    assert out == [frame(1), bytes([SILENCE_CODE]) * FRAME_BYTES, frame(3), frame(4), frame(5)]
    assert jb.filled == 1
    assert jb.push(2, frame(2)) == []  # too late: its slot was already played as silence


def test_a_huge_jump_in_chunk_numbers_fills_at_most_a_second() -> None:
    """A renumbered or hostile stream (chunk 1, then 10^15) must not be filled with years of
    silence: that froze every call on the server, or ran out of memory."""
    jb = JitterBuffer(depth=2)
    out = jb.push(1, frame(1))
    for n in (10**15, 10**15 + 1, 10**15 + 2):
        out += jb.push(n, frame(n % 256))
    silence = b"".join(p for p in out if set(p) == {SILENCE_CODE})
    assert len(silence) == FRAME_BYTES * jb.max_fill
    assert jb.jumps == 1
    assert out[-3:] == [frame(10**15 % 256), frame((10**15 + 1) % 256), frame((10**15 + 2) % 256)]
    assert jb.push(10**15 + 3, frame(7)) == [frame(7)]  # and the stream goes on from there
