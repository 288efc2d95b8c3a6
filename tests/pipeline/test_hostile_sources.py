r"""Sources we did not write, built with ``run_pieces`` beside a normal piece that must still build.

Each hostile input is written here for its purpose: a shell escape, includes
that leave the piece's folder tree (absolute, ``../``, a symbolic link, a
graphic), a Scheme loop, a Scheme memory bomb, a network connection, music
drawn past the page's edge.  All run through real LilyPond inside bubblewrap
(``--sandbox on``: the tests need it and fail at start without it).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from msmd_builder.cli import main
from msmd_builder.lilypond import sandbox
from msmd_builder.pipeline.report import load_report, write_report
from msmd_builder.pipeline.run import PieceOutcome, run_pieces
from msmd_builder.pipeline.settings import build_settings
from msmd_builder.stages.corpus.index import PieceEntry
from tests.conftest import EXAMPLES_ROOT
from tests.helpers.build import entry_of

HEADER = '\\version "2.24.0"\n\\header { title = "Test" }\n'
GOOD = HEADER + r"\score { \relative c' { c4 d e f | g1 } \layout { } \midi { } }"
#: Limits of every run here: small enough for the bombs, ample for the normal piece.
LIMITS = {"sandbox": "on", "cpu_sec": 20, "memory_mb": 768, "timeout_sec": 120}


def write(root: Path, relative: str, text: str) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return relative


def piece(root: Path, name: str, body: str) -> PieceEntry:
    """A piece in the opus folder ``ftp/TestC/Op1/<name>/`` of the tree at ``root``."""
    return entry_of(root, write(root, f"ftp/TestC/Op1/{name}/{name}.ly", HEADER + body))


def build(root: Path, work: Path, entries: list[PieceEntry], **options) -> dict[str, PieceOutcome]:
    """Build ``entries`` and a normal piece through the align stage; check the normal one."""
    good = entry_of(root, write(root, "ftp/TestC/Op9/good/good.ly", GOOD))
    settings = build_settings(work, root, until="align", **{**LIMITS, **options})
    outcomes = {o.piece_id: o for o in run_pieces([*entries, good], settings, workers=2)}
    normal = outcomes.pop(good.piece_id)
    assert normal.status == "ok", normal
    assert normal.details["sandbox"] == ("off" if options.get("sandbox") == "off" else "bwrap")
    return outcomes


def test_shell_escape_leaves_no_file_outside_the_scratch_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root, work = tmp_path / "mutopia", tmp_path / "work"
    source_copy = work / "pieces" / "TestC__Op1__shell" / "source" / "ftp/TestC/Op1/shell"
    targets = [
        outside / "escaped-absolute",  # a folder of the machine
        source_copy / "escaped-source",  # the piece's own (read-only) sources
        root / "escaped-corpus",  # the corpus
        Path("..") / "escaped-parent",  # beside the scratch folder
        Path("~") / "escaped-home",
    ]
    touch = "; ".join(f"touch {target}" for target in targets)
    entry = piece(root, "shell", f'#(system "{touch}")\n{{ c\'1 }}')
    (outcome,) = build(root, work, [entry]).values()
    assert outcome.status == "ok"  # the piece builds; its shell command changed nothing
    assert not list(tmp_path.rglob("escaped-*"))
    # Without the sandbox the same source writes where it likes: the test can fail.
    (unconfined,) = build(root, tmp_path / "work-off", [entry], sandbox="off").values()
    assert unconfined.status == "ok"
    assert (outside / "escaped-absolute").exists()


@pytest.mark.parametrize(
    ("name", "body", "named"),
    [
        ("absolute", '\\include "{secret}"\n{{ c\'1 }}', "is an absolute path"),
        ("parent", '\\include "../../Op2/secret.ily"\n{ c\'1 }', "ftp/TestC/Op2/secret.ily"),
        ("climb", '\\include "../../../../../etc/passwd"\n{ c\'1 }', "etc/passwd"),
        ("link", '\\include "link.ily"\n{ c\'1 }', "is a link to"),
        ("graphic", '\\markup { \\epsfile #X #10 #"../../Op2/logo.eps" }\n{ c\'1 }', "logo.eps"),
    ],
)
def test_references_out_of_the_tree_are_unsafe_includes(tmp_path, name, body, named):
    root = tmp_path / "mutopia"
    secret = root / write(root, "ftp/TestC/Op2/secret.ily", "secret = { d'1 }\n")
    write(root, "ftp/TestC/Op2/logo.eps", "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    entry = piece(root, name, body.replace("{secret}", str(secret)) if name == "absolute" else body)
    if name == "link":
        (root / "ftp/TestC/Op1/link/link.ily").symlink_to(secret)
    (outcome,) = build(root, tmp_path / "work", [entry]).values()
    assert (outcome.status, outcome.stage, outcome.error_class) == (
        "failed",
        "normalize",
        "unsafe-include",
    )
    assert named in outcome.message
    assert not (tmp_path / "work/pieces" / entry.piece_id / "source/ftp/TestC/Op2").exists()


def test_scheme_loop_is_stopped_at_the_cpu_limit(tmp_path):
    root = tmp_path / "mutopia"
    entry = piece(root, "loop", "#(let loop () (loop))\n{ c'1 }")
    (outcome,) = build(root, tmp_path / "work", [entry], cpu_sec=3).values()
    assert (outcome.status, outcome.error_class) == ("failed", "timeout")
    assert "CPU-time limit of 3 s" in outcome.message


def test_scheme_memory_bomb_fails_as_memory_within_the_limit(tmp_path):
    root = tmp_path / "mutopia"
    bomb = "#(let grow ((kept '())) (grow (cons (make-vector 1000000 0) kept)))\n{ c'1 }"
    entry = piece(root, "bomb", bomb)
    (outcome,) = build(root, tmp_path / "work", [entry], memory_mb=512).values()
    assert (outcome.status, outcome.error_class) == ("failed", "memory")
    assert "512 MiB" in outcome.message


def test_network_connection_fails_inside_the_sandbox(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    # LilyPond's Guile has no socket procedures; a source reaches the network through a
    # shell escape, here bash's /dev/tcp.
    shell = (
        f"bash -c 'echo hello > /dev/tcp/127.0.0.1/{port}' && echo msmd-test: connected >&2 "
        "|| echo msmd-test: no connection >&2"
    )
    connect = f'#(system "{shell}")\n{{ c\'1 }}'
    root = tmp_path / "mutopia"
    entry = piece(root, "network", connect)
    try:
        (outcome,) = build(root, tmp_path / "work", [entry]).values()
        (control,) = build(root, tmp_path / "work-off", [entry], sandbox="off").values()
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert outcome.status == "ok"
    log = (tmp_path / "work/pieces" / entry.piece_id / "render/lilypond.log").read_text()
    assert "msmd-test: no connection" in log
    # The same source outside the sandbox reaches the listener: exactly one connection.
    assert control.status == "ok"
    assert len(accepted) == 1
    control_log = tmp_path / "work-off/pieces" / entry.piece_id / "render/lilypond.log"
    assert "msmd-test: connected" in control_log.read_text()


def test_music_past_the_page_edge_is_relaid_out_or_fails_verification(tmp_path):
    root = tmp_path / "mutopia"
    bars = " ".join(["c'16 d' e' f' g' a' b' c''"] * 30)
    forced = piece(root, "forced", f"{{ \\time 2/4 \\autoLineBreaksOff {bars} }}")
    cadenza = piece(root, "cadenza", f"{{ \\cadenzaOn {bars} {bars} }}")
    # A heading as wide as the line over a note stretches its line past the page.
    heading = "\\markup { \\fill-line { \\bold Secondo } }"
    wide = piece(root, "wide-text", f"{{ \\time 2/4 c''8^{heading} d'' e'' f'' {bars} }}")
    # A notehead pushed past the right edge: no re-layout brings it back.
    pushed = piece(root, "pushed", "{ c'4 d' e' \\once \\override NoteHead.X-offset = #150 f' }")
    outcomes = build(root, tmp_path / "work", [forced, cadenza, wide, pushed])
    assert outcomes[forced.piece_id].status == "ok"
    assert outcomes[forced.piece_id].details["relayout"] == "lilypond-breaks"
    assert outcomes[cadenza.piece_id].status == "ok"
    assert outcomes[cadenza.piece_id].details["relayout"] == "breaks-between-bar-lines"
    assert outcomes[wide.piece_id].status == "ok"
    assert outcomes[wide.piece_id].details["relayout"] == "texts-outside-line"
    failed = outcomes[pushed.piece_id]
    assert (failed.status, failed.stage, failed.error_class) == ("failed", "score", "verification")
    assert "after re-layout 'texts-outside-line'" in failed.message
    assert "page 1 system 1 reaches" in failed.message
    assert "(1 noteheads outside the page)" in failed.message


@pytest.fixture
def no_bubblewrap(monkeypatch):
    """bwrap is not installed (as on a machine without the bubblewrap package)."""
    monkeypatch.setattr(sandbox, "_bwrap", lambda: None)
    sandbox.sandbox_problem.cache_clear()
    yield
    sandbox.sandbox_problem.cache_clear()


def test_sandbox_on_stops_at_start_without_bubblewrap(no_bubblewrap, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            *("dataset", str(EXAMPLES_ROOT), "--work-dir", str(tmp_path / "work")),
            *("--out", str(tmp_path / "out"), "--workers", "1", "--sandbox", "on"),
        ],
    )
    assert result.exit_code == 2
    assert "bwrap (bubblewrap) is not installed" in result.output
    assert "apt-get install bubblewrap" in result.output
    assert not (tmp_path / "work" / "pieces").exists()  # no piece was started


def test_sandbox_auto_without_bubblewrap_builds_and_warns_in_the_report(no_bubblewrap, tmp_path):
    root = tmp_path / "mutopia"
    entry = entry_of(root, write(root, "ftp/TestC/Op1/plain/plain.ly", GOOD))
    settings = build_settings(tmp_path / "work", root, until="render", sandbox="auto")
    (outcome,) = run_pieces([entry], settings)
    assert outcome.status == "ok"
    assert outcome.details["sandbox"] == "unavailable"
    json_path, md_path = write_report(
        [outcome], out_dir=tmp_path, name="render", wall_seconds=1.0, workers=1
    )
    summary = load_report(json_path)["summary"]
    assert summary["sandbox"] == {"unavailable": 1}
    assert "without the sandbox: bwrap (bubblewrap) is not installed" in summary["sandbox_warning"]
    assert "- warning: 1 piece(s) rendered without the sandbox" in md_path.read_text()
