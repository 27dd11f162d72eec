"""Redaction rules (SPEC §5.4 and the Decisions table): maps, keys, substrings, pieces and streams."""

from __future__ import annotations

import random

from tork_ray.domain.redact import REDACTED, Redactor, StreamRedactor, redact_parts, redact_text

CANARY = "canary-7f3a9c"


def test_secret_maps_and_secret_keys_are_replaced_whole() -> None:
    r = Redactor()
    body = {
        "secrets": {"token": CANARY, "other": "x"},
        "inputs": {"db_password": "hunter22", "plain": f"uses {CANARY} inside", "n": 1},
        "env": {"AWS_ACCESS_KEY_ID": "AKIA123", "My_Secret_Thing": 42, "FLAG": True},
        "registry": {"username": "me", "password": "pw"},
        "subjob": {"secrets": {"inner": "v"}},
    }
    out = r.redact(body, r.hidden_values(body))
    assert out["secrets"] == {"token": REDACTED, "other": REDACTED}
    assert out["inputs"] == {"db_password": REDACTED, "plain": f"uses {REDACTED} inside", "n": 1}
    assert out["env"] == {"AWS_ACCESS_KEY_ID": REDACTED, "My_Secret_Thing": REDACTED, "FLAG": True}
    assert out["registry"] == {"username": "me", "password": REDACTED}
    assert out["subjob"]["secrets"] == {"inner": REDACTED}


def test_values_under_secret_keys_are_hidden_everywhere_else() -> None:
    r = Redactor()
    job = {"tasks": [{"env": {"DB_PASSWORD": "s3cr3t-value"}}]}
    hidden = r.hidden_values(job)
    assert hidden == ["s3cr3t-value"]
    assert r.redact({"result": "connected with s3cr3t-value"}, hidden) == {"result": f"connected with {REDACTED}"}


def test_short_harvested_values_are_not_substituted_in_text_but_declared_secrets_are() -> None:
    r = Redactor()
    assert r.hidden_values({"env": {"PASSWORD": "ab"}}) == []
    assert r.hidden_values({"secrets": {"k": "ab"}}) == ["ab"]


def test_custom_patterns_replace_the_default_markers() -> None:
    r = Redactor(patterns=("*_TOKEN",))
    assert r.key_is_secret("github_token")
    assert not r.key_is_secret("PASSWORD")
    assert r.redact({"GITHUB_TOKEN": "t", "PASSWORD": "p"}, []) == {"GITHUB_TOKEN": REDACTED, "PASSWORD": "p"}


def test_disabled_redactor_changes_nothing() -> None:
    r = Redactor(enabled=False)
    body = {"secrets": {"a": "b"}}
    assert r.redact(body, ["b"]) == body


def test_longer_secret_containing_a_shorter_one_is_hidden_whole() -> None:
    assert redact_text("xx abcdef yy", ["abc", "abcdef"]) == f"xx {REDACTED} yy"
    assert redact_text("abcabc", ["abc"]) == REDACTED  # touching occurrences merge


def test_a_secret_split_across_log_parts_is_hidden_in_both() -> None:
    parts = ["first line\nthe token is can", "ary-7f3a9c and more\n"]
    out = redact_parts(parts, [CANARY])
    assert out == ["first line\nthe token is " + REDACTED, " and more\n"]
    assert all(CANARY[:4] not in piece[-4:] for piece in out)


def test_a_secret_spanning_three_parts() -> None:
    out = redact_parts(["a can", "ary-7f", "3a9c b"], [CANARY])
    assert out == ["a " + REDACTED, "", " b"]


def test_stream_never_lets_a_secret_out_whatever_the_chunking() -> None:
    text = f"start\nline with {CANARY} in it\n{CANARY}\nend {CANARY}"
    rng = random.Random(7)
    for _ in range(200):
        stream = StreamRedactor([CANARY])
        out: list[str] = []
        position = 0
        while position < len(text):
            step = rng.randint(1, 9)
            out.append(stream.feed(text[position : position + step]))
            position += step
        out.append(stream.finish())
        shown = "".join(out)
        assert CANARY not in shown
        assert shown == redact_text(text, [CANARY])
        # Nothing emitted may end in the middle of a secret's prefix that later completes.
        for piece in out:
            assert not any(piece.endswith(CANARY[:k]) for k in range(3, len(CANARY)))


def test_stream_with_a_multiline_secret() -> None:
    secret = "BEGIN KEY\nabc123\nEND KEY"
    text = f"before\n{secret}\nafter\n"
    stream = StreamRedactor([secret])
    shown = "".join(stream.feed(ch) for ch in text) + stream.finish()
    assert shown == f"before\n{REDACTED}\nafter\n"


def test_stream_releases_complete_lines_at_once() -> None:
    stream = StreamRedactor([CANARY])
    assert stream.feed("hello\nwor") == "hello\n"
    assert stream.feed("ld\n") == "world\n"
    assert stream.finish() == ""


def test_walk_budget_bounds_hostile_documents() -> None:
    shared: list[object] = []
    for _ in range(40):  # 2**40 paths through shared references, as a YAML alias bomb would build
        shared = [shared, shared]
    assert Redactor().hidden_values({"x": shared}, budget=10_000) == []
