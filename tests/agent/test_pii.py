"""The personal-data finder on temp web, FTP and share trees named by real nginx, vsftpd and Samba configuration
files. Numbers are generated here, check digits computed here (GB 11643's MOD 11-2, Luhn), independently of
agent/pii; every output, log and state file is grepped for the unmasked planted numbers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from agent.catalog import render
from agent.collector import AgentContext
from agent.collectors.pii import PiiCollector, PiiOptions
from agent.pii.detectors import Found, scan_text

RNG = random.Random(20261201)


def id18(region: str = "110105", born: dt.date = dt.date(1949, 12, 31), seq: int = 2) -> str:
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # the standard's definition: W_i = 2^(i-1) mod 11
    check = (12 - sum(int(d) * w for d, w in zip(body, weights)) % 11) % 11
    return body + ("X" if check == 10 else str(check))


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(str(RNG.randrange(10)) for _ in range(length - len(prefix) - 1))
    for last in "0123456789":
        digits = body + last
        total = sum(int(c) if i % 2 == 0 else (int(c) * 2 - 9 if int(c) * 2 > 9 else int(c) * 2)
                    for i, c in enumerate(reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def people(n: int) -> list[tuple[str, str, str]]:
    out = []
    for _ in range(n):
        born = dt.date(1950, 1, 1) + dt.timedelta(days=RNG.randrange(25000))
        out.append((id18(RNG.choice(["110105", "320102", "440305", "510104"]), born, RNG.randrange(1000)),
                    f"1{RNG.choice('3589')}{RNG.randrange(10)}{RNG.randrange(10**8):08d}",
                    luhn_complete("622202", 19)))
    return out


def test_validation_not_bare_patterns() -> None:
    good = id18()
    assert good == "11010519491231002X"  # the standard's own worked example, recomputed
    wrong_check = good[:17] + ("1" if good[17] != "1" else "2")
    bad_date = id18(born=dt.date(1990, 1, 1)).replace("19900101", "19901301")
    bad_region = "99" + id18()[2:]
    future = id18(born=dt.date(2099, 1, 1))
    card = luhn_complete("622202", 19)
    bad_card = card[:-1] + str((int(card[-1]) + 1) % 10)
    text = " ".join([good, wrong_check, bad_date, bad_region, future, "13812345678", "12345678901",
                     card, bad_card, "订单号 2024123456789012345678", "138123456789"])
    found = Found()
    scan_text(text, found)
    assert found.counts == {"id_card": 1, "mobile": 1, "bank_card": 1}
    assert found.samples["id_card"] == ["110105********002X"]
    assert found.samples["mobile"] == ["138****5678"]
    assert found.samples["bank_card"] == [card[:6] + "****" + card[-4:]]


def _xlsx(path: Path, rows: list[list[str]]) -> None:
    strings = [cell for row in rows for cell in row]
    shared = "".join(f"<si><t>{s}</t></si>" for s in strings)
    sheet_rows = "".join(
        f'<row r="{r + 1}">' + "".join(f'<c r="{chr(65 + c)}{r + 1}" t="s"><v>{r * len(row) + c}</v></c>'
                                       for c, _ in enumerate(row)) + "</row>" for r, row in enumerate(rows))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"/>')
        z.writestr("xl/sharedStrings.xml", '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                   f'openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}">{shared}</sst>')
        z.writestr("xl/worksheets/sheet1.xml", '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://'
                   f'schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{sheet_rows}</sheetData></worksheet>')


def _docx(path: Path, paragraphs: list[str]) -> None:
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
                   f'openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>')


def _pdf(path: Path, lines: list[str]) -> None:
    """A one-page PDF written by hand from the format's documented objects (catalog, pages, page, font, content)."""
    ops = "BT /F1 10 Tf 50 800 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(ops)} >>\nstream\n{ops}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


@pytest.fixture
def host(tmp_path: Path) -> dict[str, object]:
    web, ftp, share, extra = (tmp_path / d for d in ("www", "ftp", "share", "extra"))
    for d in (web / "files", ftp, share, extra):
        d.mkdir(parents=True)
    planted = people(40)
    rows = [["姓名", "身份证号", "手机", "银行卡"]] + [[f"居民{i}", p[0], p[1], p[2]] for i, p in enumerate(planted)]
    # 低保 list as CSV in GB 18030 (what Excel on Chinese Windows writes), in the nginx alias folder.
    (web / "files" / "dibao-2026.csv").write_bytes("\n".join(",".join(r) for r in rows).encode("gb18030"))
    (web / "index.html").write_text(f"<html><body>联系电话 <b>{planted[0][1]}</b></body></html>")  # one: not a leak
    (web / "subsidy.json").write_text(json.dumps([{"name": r[0], "id": r[1]} for r in rows[1:11]], ensure_ascii=False))
    (web / "backup.sql").write_text("INSERT INTO users VALUES " + ",".join(f"('{p[0]}','{p[1]}')" for p in planted[:8]))
    (web / "site.bak").write_bytes(b"\x00binary backup")
    _xlsx(ftp / "名单.xlsx", rows[:12])
    _docx(share / "通知.docx", [f"{r[0]} {r[1]}" for r in rows[1:7]])
    (share / "photo.pdf").write_bytes(b"%PDF-1.4 damaged")  # pdftotext cannot read it: unknown, not clean
    _pdf(share / "gongshi.pdf", [f"No.{i} {p[0]}" for i, p in enumerate(planted[:8])])
    (web / "gongshi.html").write_text("<table>" + "".join(f"<tr><td>居民{i}</td><td>{p[0]}</td></tr>"
                                                        for i, p in enumerate(planted[:10])) + "</table>")
    (extra / "notes.txt").write_text("\n".join(p[1] for p in planted[:3]))  # under the threshold of 5
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "mime.types").write_text("types { text/html html; }\n")
    (conf / "sites").mkdir()
    (conf / "nginx.conf").write_text(f"""
events {{}}
http {{
    include {conf}/mime.types;
    include {conf}/sites/*.conf;
}}
""")
    (conf / "sites" / "gov.conf").write_text(f"""
server {{
    listen 127.0.0.1:18080;
    root {web};   # the township portal
    location /files/ {{
        alias {web}/files/;
    }}
}}
""")
    (conf / "vsftpd.conf").write_text(f"listen=YES\nanonymous_enable=YES\nanon_root={ftp}\nlocal_enable=NO\n")
    (conf / "smb.conf").write_text(f"[global]\n   workgroup = TOWN\n[公共]\n   path = {share}\n   guest ok = yes\n")
    return {"tmp": tmp_path, "conf": conf, "planted": planted, "web": web, "extra": extra}


def _collector(host: dict[str, object], **kw: object) -> PiiCollector:
    conf = host["conf"]
    assert isinstance(conf, Path)
    opts = PiiOptions(
        paths=[str(host["extra"])],
        configs={"nginx": [str(conf / "nginx.conf")], "vsftpd": [str(conf / "vsftpd.conf")],
                 "samba": [str(conf / "smb.conf")], "apache": [], "tomcat": []},
        **kw,  # type: ignore[arg-type]
    )
    tmp = host["tmp"]
    assert isinstance(tmp, Path)
    return PiiCollector(opts, AgentContext(state_dir=tmp / "state"))


def test_the_shipped_style_nginx_config_is_valid_nginx(host: dict[str, object]) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = host["conf"]
    assert isinstance(conf, Path)
    result = subprocess.run([nginx, "-t", "-c", str(conf / "nginx.conf"), "-p", str(conf),
                             "-g", f"pid {conf}/nginx.pid; error_log stderr;"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_finds_leaks_in_every_format_and_location_with_counts_only(
    host: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    col = _collector(host)
    out = col.new_metric_set()
    col.collect(out)
    v = lambda name, **labels: out.get(name, labels)  # noqa: E731
    assert v("shaobing_pii_files", location="web", kind="id_card") == 4  # the CSV, the JSON, the HTML, the SQL dump
    # The CSV and the SQL dump; index.html's single contact number is not a leak.
    assert v("shaobing_pii_files", location="web", kind="mobile") == 2
    assert v("shaobing_pii_records", location="web", kind="bank_card") == 40
    assert v("shaobing_pii_files", location="ftp", kind="id_card") == 1  # the .xlsx
    assert v("shaobing_pii_files", location="share", kind="id_card") == 2  # the .docx and the PDF (pdftotext)
    assert v("shaobing_pii_files", location="configured", kind="mobile") == 0  # 3 numbers: under the threshold
    assert v("shaobing_pii_dumps", location="web") == 2  # backup.sql and site.bak
    assert v("shaobing_pii_locations", location="web") == 2 and v("shaobing_pii_locations", location="ftp") == 1
    assert v("shaobing_pii_scan_unread_files", reason="format") == 1  # the damaged PDF: unknown, not clean
    report = col.report()
    assert report is not None
    text = "\n".join([f"{f.title}\n{f.detail}\n{f.fix}" for f in report.findings] + report.notes)
    assert "dibao-2026.csv" in text and "nginx location /files/ (alias)" in text
    assert "vsftpd anonymous FTP" in text and "guest ok" in text and "数据库备份" in text
    assert "110105********" in text or "320102********" in text or "440305********" in text
    _assert_nothing_unmasked(host, [render(out.families()).decode(), text, caplog.text])


def _assert_nothing_unmasked(host: dict[str, object], outputs: list[str]) -> None:
    tmp = host["tmp"]
    planted = host["planted"]
    assert isinstance(tmp, Path) and isinstance(planted, list)
    state_texts = [p.read_bytes().decode("latin-1") for p in (tmp / "state").iterdir()]
    for person in planted:
        for number in person:
            for blob in outputs + state_texts:
                assert number not in blob, "an unmasked planted number leaked"
    for blob in state_texts:
        assert "dibao" not in blob and "www" not in blob  # keyed hashes only: no path


def test_rescans_of_an_unchanged_tree_read_nothing_and_a_change_is_read(host: dict[str, object]) -> None:
    col = _collector(host)
    col.collect(col.new_metric_set())
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_pii_scan_read_files") == 0 and out.get("shaobing_pii_scan_bytes_read") == 0
    assert (out.get("shaobing_pii_scan_cached_files") or 0) >= 6
    assert out.get("shaobing_pii_files", {"location": "web", "kind": "id_card"}) == 4  # same verdicts from cache
    web = host["web"]
    assert isinstance(web, Path)
    (web / "subsidy.json").write_text("[]")  # cleaned up
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_pii_scan_read_files") == 1
    assert out.get("shaobing_pii_files", {"location": "web", "kind": "id_card"}) == 3


def test_threshold_and_budget_are_honest(host: dict[str, object]) -> None:
    col = _collector(host, min_records=50)
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_pii_files", {"location": "web", "kind": "id_card"}) == 0
    starved = _collector(host, max_files=2)
    out = starved.new_metric_set()
    starved.collect(out)
    assert out.get("shaobing_pii_scan_budget_exhausted") == 0 or out.get("shaobing_pii_scan_unread_files",
                                                                          {"reason": "pending"})
    assert (out.get("shaobing_pii_scan_unread_files", {"reason": "pending"}) or 0) > 0  # not reached: unknown


def test_location_kinds_with_no_folder_export_nothing(host: dict[str, object]) -> None:
    conf = host["conf"]
    tmp = host["tmp"]
    assert isinstance(conf, Path) and isinstance(tmp, Path)
    only_web = PiiOptions(configs={"nginx": [str(conf / "nginx.conf")], "vsftpd": [], "samba": [], "apache": [],
                                   "tomcat": []})
    col = PiiCollector(only_web, AgentContext(state_dir=tmp / "state2"))
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_pii_files", {"location": "web", "kind": "id_card"}) == 4
    assert out.get("shaobing_pii_files", {"location": "ftp", "kind": "id_card"}) is None  # not checked: absent
    assert out.get("shaobing_pii_dumps", {"location": "share"}) is None


def test_a_truncated_state_key_is_replaced_not_fatal(tmp_path: Path) -> None:
    from agent.pii.scan import PiiState

    (tmp_path / "pii_scan.key").write_bytes(b"")
    state = PiiState(tmp_path)
    first = state.digest("/srv/www/a.csv")
    assert len(first) == 32 and len((tmp_path / "pii_scan.key").read_bytes()) == 32
    assert PiiState(tmp_path).digest("/srv/www/a.csv") == first  # the new key is kept
    assert (tmp_path / "pii_scan.key").stat().st_mode & 0o777 == 0o600
