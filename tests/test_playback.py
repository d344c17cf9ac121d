"""What the caller heard, from the marks Twilio echoed."""

from voice_agent.call.playback import Playback


def test_all_marks_echoed_means_all_heard() -> None:
    pb = Playback()
    utt = pb.begin(start_ms=0)
    m0 = pb.queued(utt, "Hello there.", 8000)
    m1 = pb.queued(utt, "How can I help?", 8000)
    end = pb.end_mark(utt)
    pb.finished(utt)
    assert end == "u1.end" and not m1.endswith(".end")
    assert pb.speaking and not pb.idle.is_set()
    pb.on_mark(m0)
    pb.on_mark(m1)
    assert pb.speaking, "the answer's end mark is still out"
    pb.on_mark(end)
    assert not pb.speaking and pb.idle.is_set()
    seg = pb.segments()[0]
    assert not seg.interrupted and seg.heard_text is None and seg.end_ms == 2000


def test_barge_in_keeps_only_sentences_whose_marks_came_back() -> None:
    pb = Playback()
    utt = pb.begin(start_ms=500)
    m0 = pb.queued(utt, "First sentence.", 8000)
    m1 = pb.queued(utt, "Second sentence.", 8000)
    pb.finished(utt)
    pb.on_mark(m0)
    pb.interrupt()
    assert not pb.on_mark(m1)  # Twilio returns cleared marks; they were not heard
    seg = pb.segments()[0]
    assert seg.interrupted and seg.heard_text == "First sentence."
    assert seg.text == "First sentence. Second sentence."


def test_what_a_barge_in_would_stop_is_the_latest_utterance_and_its_unheard_part() -> None:
    pb = Playback()
    assert pb.last_sentences() == [] and pb.last_segment() is None
    greeting = pb.begin(start_ms=0)
    pb.on_mark(pb.queued(greeting, "Hello.", 8000))
    pb.finished(greeting)
    answer = pb.begin(start_ms=3000)
    heard = pb.queued(answer, "We fix pipes.", 8000)
    pb.queued(answer, "How can I help?", 8000)
    pb.on_mark(heard)
    assert pb.last_sentences() == ["We fix pipes.", "How can I help?"]
    cut = pb.cut_off()
    assert cut.unheard == ["How can I help?"]
    assert cut.agent_text == "We fix pipes. How can I help?"
    pb.interrupt()
    pb.finished(answer)
    line = pb.last_segment()
    assert line is not None and line.start_ms == 3000
    assert line.interrupted and line.heard_text == "We fix pipes."
