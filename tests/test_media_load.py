"""The media load bench's own parts: the frames its client writes and how it reads /metrics."""

import json
import os

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from bench.media_load import Snapshot, phase, total
from bench.wsload import TEXT, client_frame


def parsed(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("the frame was not complete")


def test_client_frames_are_what_a_websocket_server_reads() -> None:
    mask = os.urandom(4)
    for size in (10, 125, 126, 300, 70_000):  # the three length encodings
        text = json.dumps({"event": "media", "pad": "x" * size}).encode()
        frame = parsed(client_frame(TEXT, text, mask))
        assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == text


METRICS = """\
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
# TYPE voice_agent_loop_lag_seconds histogram
voice_agent_loop_lag_seconds_bucket{{worker="w1",le="0.05"}} {ok}
voice_agent_loop_lag_seconds_bucket{{worker="w1",le="0.1"}} {ok}
voice_agent_loop_lag_seconds_bucket{{worker="w1",le="0.25"}} {all}
voice_agent_loop_lag_seconds_bucket{{worker="w1",le="+Inf"}} {all}
voice_agent_loop_lag_seconds_count{{worker="w1"}} {all}
# TYPE voice_agent_loop_lag_max_seconds gauge
voice_agent_loop_lag_max_seconds{{worker="w1"}} {lag}
"""


def test_a_worker_s_own_metrics_are_read_through_its_worker_label() -> None:
    from voice_agent.ops.metrics import Metrics

    m = Metrics(worker="w7")
    for late in (0.001, 0.02, 0.3):
        m.lag_hist.observe(late)
    snap = Snapshot.parse(m.render(active_calls=3, transcription_rtf=None).decode())
    assert (snap.ticks, snap.late) == (3, 1)
    assert snap.cpu_s >= 0


def test_late_ticks_and_cpu_are_counted_per_phase_and_summed_over_workers() -> None:
    def snap(cpu: float, ok: int, all_: int, lag: float) -> Snapshot:
        return Snapshot.parse(METRICS.format(cpu=cpu, ok=ok, all=all_, lag=lag))

    one = phase(snap(10, 100, 100, 0), snap(20, 590, 600, 0.3), wall=20)
    two = phase(snap(5, 50, 50, 0), snap(15, 550, 550, 0.05), wall=20)
    assert (one.cores, one.ticks, one.late, one.lag_max_s) == (0.5, 500, 10, 0.3)
    both = total([one, two])
    assert both.cores == 1.0 and both.late_share == 10 / 1000 and both.lag_max_s == 0.3
