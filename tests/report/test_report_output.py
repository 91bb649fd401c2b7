"""The report as people get it: the CLI writes HTML and PDF; the PDF has A4 pages, page numbers, embedded
Chinese fonts and no missing glyphs; the HTML renders in headless Chromium with every section and chart;
a Prometheus that is down or refuses gives a clear error and no files."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fontTools.ttLib import TTCollection
from PIL import Image

from report.charts import font_file
from report.period import TZ
from tests.report.conftest import Week
from tests.support.prometheus import free_port

REPO = Path(__file__).resolve().parents[2]
SECTIONS = [
    "一、各乡镇（街道）情况",
    "二、主机可用性",
    "三、资源使用",
    "四、版本与更新",
    "五、安全",
    "六、告警与处理",
    "七、本周待办",
    "附录",
]


def run_report(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "report", "generate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def written(week: Week, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report-out")
    done = run_report("--prometheus", week.url, *week.args, "--out", str(out), "--title", "测试县政务服务器巡检报告")
    assert done.returncode == 0, done.stderr
    files = {Path(line).suffix.lstrip("."): Path(line) for line in done.stdout.split()}
    assert set(files) == {"html", "pdf", "json"}
    return files


def _pdftext(pdf: Path, *pages: str) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", *pages, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_the_summary_is_one_page(written: dict[str, Path]) -> None:
    first = _pdftext(written["pdf"], "-f", "1", "-l", "1")
    for needed in ("城关镇", "河口乡", "石桥镇", "需立即处理", "需关注", "正常", "本周最要紧的事", "1. 城关镇 cg-02"):
        assert needed in first, needed
    assert "一、各乡镇（街道）情况" in _pdftext(written["pdf"], "-f", "2", "-l", "2")


def test_pdf_pages_numbers_period_and_fonts(written: dict[str, Path], week: Week) -> None:
    pdf = written["pdf"]
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())  # type: ignore[union-attr]
    assert (round(width), round(height)) == (595, 842)  # A4 portrait
    assert 6 <= pages <= 20
    text = _pdftext(pdf)
    for section in SECTIONS:
        assert section in text, section
    numbers = [int(n) for n in re.findall(rf"第\s*(\d+)\s*页\s*/\s*共\s*{pages}\s*页", text)]
    assert numbers == list(range(1, pages + 1))
    start = dt.datetime.fromtimestamp(week.start, TZ).strftime("%Y-%m-%d 00:00")
    last_day = dt.datetime.fromtimestamp(week.end - 1, TZ).strftime("%Y-%m-%d")
    assert f"{start} 至 {last_day}" in text
    generated = re.search(r"生成于\s*(\d{4}-\d\d-\d\d \d\d:\d\d)（北京时间）", text)
    assert generated is not None
    shown = dt.datetime.strptime(generated.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=TZ)
    assert abs(shown.timestamp() - written["pdf"].stat().st_mtime) < 300
    assert "测试县政务服务器巡检报告" in text and "98.36%" in text  # cg-02: 165 minutes down of 7 days
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts  # every font embedded
    assert all("Noto-Sans-CJK" in line for line in fonts), fonts  # no fallback font stood in


def test_pdf_has_no_missing_glyphs(written: dict[str, Path]) -> None:
    """Tofu would come from characters the embedded font lacks: every character of the text must be in
    Noto Sans CJK SC's character map."""
    text = _pdftext(written["pdf"])
    collection = TTCollection(str(font_file()))
    sc = next(f for f in collection.fonts if "Noto Sans CJK SC" in f["name"].getDebugName(1))
    cmap = sc.getBestCmap()
    chars = {c for c in text if not c.isspace()}
    assert sum(1 for c in chars if "\u4e00" <= c <= "\u9fff") > 200  # really Chinese
    missing = sorted(c for c in chars if ord(c) not in cmap)
    assert missing == []


def test_pdf_pages_render(written: dict[str, Path], tmp_path: Path) -> None:
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(written["pdf"]), str(tmp_path / "page")], check=True, timeout=120
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    info = subprocess.run(["pdfinfo", str(written["pdf"])], capture_output=True, text=True, check=True).stdout
    assert len(pages) == int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    first = Image.open(pages[0]).convert("RGB")
    colours = {rgb for _, rgb in first.getcolors(maxcolors=1 << 24) or []}
    # The traffic lights of the summary page: red, yellow and green were drawn.
    for rgb in ((0xC6, 0x28, 0x28), (0xF9, 0xA8, 0x25), (0x2E, 0x7D, 0x32)):
        assert any(sum(abs(a - b) for a, b in zip(px, rgb)) < 40 for px in colours), rgb


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_html_in_headless_chromium(written: dict[str, Path], tmp_path: Path) -> None:
    html = written["html"]
    assert "http://" not in html.read_text().replace("http://www.w3.org", "")  # no external assets
    chromium = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*chromium, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120).stdout
    for section in (
        "summary",
        "townships",
        "availability",
        "resources",
        "currency",
        "security",
        "alerts",
        "todo",
        "inventory",
    ):
        assert f'id="{section}"' in dom, section
    charts = re.findall(r'<img alt="([^"]+)" src="data:image/svg\+xml;base64,', dom)
    assert "可用性图" in charts and "磁盘图" in charts and sum(c.endswith("资源图") for c in charts) == 3
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*chromium, f"--screenshot={shot}", "--window-size=1000,5000", "--hide-scrollbars", html.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1000, 5000)
    colours = {rgb for _, rgb in image.getcolors(maxcolors=1 << 24) or []}
    # The availability chart's bars (green online, red offline, grey no-data hatch) were painted.
    for rgb in ((0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28), (0x9E, 0x9E, 0x9E)):
        assert any(sum(abs(a - b) for a, b in zip(px, rgb)) < 30 for px in colours), rgb


def test_sidecar_and_html_carry_no_account_names(written: dict[str, Path]) -> None:
    facts = json.loads(written["json"].read_text())
    assert facts["summary"]["weak_accounts"] == 2 and facts["summary"]["weak_accounts_before"] == 3
    assert facts["townships"] == {"城关镇": "red", "河口乡": "yellow", "石桥镇": "green"}
    # Metrics carry counts by class; the report never invents names.
    assert "account=" not in written["html"].read_text()


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"service unavailable")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_prometheus_down_or_refusing_gives_no_report(week: Week, refusing: str, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    for url, says in ((closed, "cannot reach Prometheus"), (refusing, "HTTP 503")):
        out = tmp_path / "out"
        done = run_report("--prometheus", url, *week.args, "--out", str(out))
        assert done.returncode == 3, done.stderr
        assert says in done.stderr and url in done.stderr
        assert not out.exists() or list(out.iterdir()) == []


def test_nothing_in_scope_is_an_error_not_an_empty_report(week: Week, tmp_path: Path) -> None:
    done = run_report("--prometheus", week.url, *week.args, "--township", "不存在乡", "--out", str(tmp_path))
    assert done.returncode == 3 and "nothing to report" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_options_and_config_name_the_problem(week: Week, tmp_path: Path) -> None:
    done = run_report("--prometheus", week.url, "--last", "7x")
    assert done.returncode == 2 and "bad duration '7x'" in done.stderr
    config = tmp_path / "report.yml"
    config.write_text("title: t\noutput:\n  keeep: 3\n", encoding="utf-8")
    done = run_report("--config", str(config))
    assert done.returncode == 2
    assert f"{config}:3: output.keeep: unknown key 'keeep' (did you mean 'keep'?)" in done.stderr


def test_keep_prunes_old_reports(week: Week, tmp_path: Path) -> None:
    for days in (3, 2, 1):
        end = dt.datetime.fromtimestamp(week.end - (days - 1) * 86400, TZ).isoformat()
        done = run_report(
            "--prometheus",
            week.url,
            "--last",
            "2d",
            "--to",
            end,
            "--out",
            str(tmp_path),
            "--keep",
            "2",
            "--format",
            "html",
        )
        assert done.returncode == 0, done.stderr
    stems = sorted({p.name.split(".")[0] for p in tmp_path.iterdir()})
    assert len(stems) == 2 and all((tmp_path / f"{s}.html").is_file() for s in stems)
    newest = dt.datetime.fromtimestamp(week.end, TZ).strftime("%Y%m%d")
    assert stems[-1].endswith(newest)
