"""rag.sources on real archives, files and a real local HTTP server (no mocks)."""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import tarfile
import threading
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.errors import InvalidInput
from rag.sources import (
    ArchiveLimits,
    ManifestEntry,
    Staged,
    extract_archive,
    is_archive,
    parse_manifest,
    stage_folder,
    stage_manifest,
    walk_folder,
)
from rag.sources.manifests import _host_allowed

MiB = 2**20


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with warnings.catch_warnings():  # duplicate names warn
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith("gz") else "w") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return path


def extract(archive: Path, tmp_path: Path, limits: ArchiveLimits | None = None) -> Staged:
    return extract_archive(
        archive, archive.name, tmp_path / "staging", limits=limits or ArchiveLimits()
    )


def reasons(staged: Staged) -> dict[str, str]:
    return {r.name: r.reason for r in staged.rejected}


def staged_files(tmp_path: Path) -> list[Path]:
    staging = tmp_path / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


# -- archives ---------------------------------------------------------------------------------


def test_is_archive() -> None:
    assert all(map(is_archive, ["a.zip", "A.TAR.GZ", "b.tgz", "c.tar"]))
    assert not any(map(is_archive, ["a.gz", "a.pdf", "zip", "a.tar.bz2"]))


def test_traversal_and_absolute_members_are_rejected(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "evil.zip",
        {
            "../../etc/passwd": b"x",
            "/etc/passwd": b"x",
            "a/../../x.txt": b"x",
            "a/../b.txt": b"x",
            "..\\..\\win.txt": b"x",
            "C:/win.txt": b"x",
            "ok.md": b"# fine",
        },
    )
    staged = extract(archive, tmp_path)
    assert [f.filename for f in staged.files] == ["ok.md"]
    got = reasons(staged)
    assert got["../../etc/passwd"] == "path escapes the archive (../../etc/passwd)"
    assert got["/etc/passwd"].startswith("absolute path")
    assert got["a/../../x.txt"].startswith("path escapes the archive")
    assert got["a/../b.txt"].startswith("path escapes the archive")
    assert "backslash" in got["..\\..\\win.txt"]
    assert "drive letter" in got["C:/win.txt"]
    assert len(staged_files(tmp_path)) == 1
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "x.txt").exists()


def test_tar_links_devices_folders_and_hidden_files(tmp_path: Path) -> None:
    def info(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.type, member.linkname = kind, linkname
        return member

    archive = make_tar(
        tmp_path / "links.tar",
        [
            info("docs", tarfile.DIRTYPE),
            ("docs/real.md", b"# real"),
            info("docs/link.md", tarfile.SYMTYPE, "/etc/passwd"),
            info("docs/hard.md", tarfile.LNKTYPE, "docs/real.md"),
            info("docs/pipe.md", tarfile.FIFOTYPE),
            ("docs/.hidden.md", b"secret"),
            (".git/config.txt", b"secret"),
            ("__MACOSX/docs/._real.md", b"junk"),
            ("docs/empty.txt", b""),
        ],
    )
    staged = extract(archive, tmp_path)
    assert [(f.filename, f.size) for f in staged.files] == [
        ("docs/real.md", 6),
        ("docs/empty.txt", 0),
    ]
    assert reasons(staged) == {
        "docs/link.md": "is a symbolic link",
        "docs/hard.md": "is a hard link",
        "docs/pipe.md": "is a device or fifo",
    }


def test_zip_symlink_member_is_rejected(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link.md")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
    assert reasons(extract(tmp_path / "l.zip", tmp_path)) == {"link.md": "is a symbolic link"}


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good file, 200 MiB of zeros (about 200 KB compressed), then another good file."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    zeros = bytes(MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("before.md", b"# before")
        with zf.open("zeros.txt", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(zeros)
    assert path.stat().st_size < 1 * MiB
    return path


def test_zip_bomb_member_is_stopped_by_its_ratio(tmp_path: Path, zip_bomb: Path) -> None:
    staged = extract(zip_bomb, tmp_path, ArchiveLimits(max_member_bytes=2**30))
    assert [f.filename for f in staged.files] == ["before.md"]
    assert reasons(staged) == {"zeros.txt": "expands more than 100x (zip bomb?)"}
    assert len(staged_files(tmp_path)) == 1  # the partial file is gone


def test_zip_bomb_member_is_stopped_by_its_declared_size_or_the_total(
    tmp_path: Path, zip_bomb: Path
) -> None:
    staged = extract(zip_bomb, tmp_path)  # the header says 200 MiB: refused before reading
    assert reasons(staged) == {"zeros.txt": "larger than the 50 MiB per-file limit"}
    staged = extract(
        zip_bomb,
        tmp_path,
        ArchiveLimits(max_member_bytes=2**30, max_total_bytes=5 * MiB, max_ratio=1e6),
    )
    assert reasons(staged) == {"zeros.txt": "archive goes over the 5 MiB total size limit"}
    assert len(staged_files(tmp_path)) == 2  # before.md, twice


def test_member_whose_header_lies_about_its_size(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "liar.zip", {"big.txt": bytes(3 * MiB), "ok.md": b"# ok"})
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local, central header
        at = data.index(signature)
        assert struct.unpack_from("<I", data, at + offset)[0] == 3 * MiB
        struct.pack_into("<I", data, at + offset, 100)
    archive.write_bytes(bytes(data))
    staged = extract(archive, tmp_path, ArchiveLimits(max_member_bytes=MiB, max_ratio=1e6))
    assert [f.filename for f in staged.files] == ["ok.md"]
    # zipfile stops at the size the header claims; the data then fails its CRC
    assert reasons(staged) == {"big.txt": "unreadable (BadZipFile: Bad CRC-32 for file 'big.txt')"}
    assert all(p.stat().st_size <= MiB for p in staged_files(tmp_path))


def test_total_size_limit_stops_extraction(tmp_path: Path) -> None:
    members = {f"f{i}.txt": os.urandom(400_000) for i in range(4)}
    archive = make_zip(tmp_path / "big.zip", members)
    staged = extract(archive, tmp_path, ArchiveLimits(max_total_bytes=MiB))
    assert [f.filename for f in staged.files] == ["f0.txt", "f1.txt"]
    assert reasons(staged) == dict.fromkeys(
        ["f2.txt", "f3.txt"], "archive goes over the 1 MiB total size limit"
    )
    assert len(staged_files(tmp_path)) == 2


def test_member_count_limit_stops_extraction(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", {f"d/{i}.txt": b"x" for i in range(5)})
    staged = extract(archive, tmp_path, ArchiveLimits(max_members=3))
    assert [f.filename for f in staged.files] == ["d/0.txt", "d/1.txt", "d/2.txt"]
    assert reasons(staged) == dict.fromkeys(["d/3.txt", "d/4.txt"], "archive has more than 3 files")


def test_tar_gz_bomb_is_stopped_by_the_whole_archive_ratio(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "bomb.tar.gz", [("a.md", b"# a"), ("zeros.txt", bytes(5 * MiB))])
    staged = extract(archive, tmp_path)
    assert [f.filename for f in staged.files] == ["a.md"]
    assert reasons(staged) == {"zeros.txt": "archive expands more than 100x (zip bomb?)"}


def test_tar_header_claiming_megabytes_is_not_read_into_memory(tmp_path: Path) -> None:
    huge = tarfile.TarInfo("b.md")
    huge.pax_headers = {"comment": "x" * 3 * MiB}  # tarfile would read this header whole
    archive = tmp_path / "pax.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        first = tarfile.TarInfo("a.md")
        first.size = 3
        tf.addfile(first, io.BytesIO(b"# a"))
        tf.addfile(huge)
    staged = extract(archive, tmp_path, ArchiveLimits(max_ratio=1e6))
    assert [f.filename for f in staged.files] == ["a.md"]
    assert reasons(staged) == {"pax.tar.gz": "stopped reading: a tar header is larger than 1 MiB"}


def test_duplicates_unsupported_types_and_nested_paths(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "mixed.zip",
        {
            "reports/2024/q1.md": b"first",
            "./reports/2024/q1.md": b"second",
            "tool.exe": b"MZ",
            "reports/": b"",
            "README": b"no extension",
        },
    )
    staged = extract(archive, tmp_path)
    assert [f.filename for f in staged.files] == ["reports/2024/q1.md"]
    assert staged.files[0].path.read_bytes() == b"first"
    got = reasons(staged)
    assert got["./reports/2024/q1.md"] == "duplicate of an earlier member with the same path"
    assert got["tool.exe"].startswith("unsupported file type ('.exe')")
    assert got["README"].startswith("unsupported file type (no extension)")


def test_tar_gz_keeps_relative_paths_and_metadata(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "docs.tgz", [("a/b/c.md", b"# c"), ("top.txt", b"top")])
    staged = extract_archive(
        archive, "docs.tgz", tmp_path / "s", limits=ArchiveLimits(), metadata={"team": "ops"}
    )
    assert [(f.filename, f.path.read_bytes()) for f in staged.files] == [
        ("a/b/c.md", b"# c"),
        ("top.txt", b"top"),
    ]
    assert all(
        f.metadata == {"team": "ops"} and f.path.parent == tmp_path / "s" for f in staged.files
    )
    assert staged.rejected == []


BAD_NAMES = {  # member → what its rejection says
    "bell\x07.md": "U+0007 is a control character",
    "c1\x85.md": "U+0085 is a control character",
    "invoice\u202efdp.md": "U+202E is a bidirectional text control",
    "x" * 253 + ".md": "file name too long",  # 256 bytes
}


@pytest.mark.parametrize("name", ["names.zip", "names.tar.gz"])
def test_members_with_bad_names_are_rejected_alone(tmp_path: Path, name: str) -> None:
    longest = "a" * 252 + ".md"  # 255 bytes: the most a file system takes
    members = {"ok.md": b"# ok", **dict.fromkeys(BAD_NAMES, b"# bad"), longest: b"# long"}
    path = tmp_path / name
    archive = (
        make_zip(path, members) if name.endswith(".zip") else make_tar(path, [*members.items()])
    )
    staged = extract(archive, tmp_path)
    assert [f.filename for f in staged.files] == ["ok.md", longest]
    got = reasons(staged)
    assert set(got) == set(BAD_NAMES)
    assert all(why in got[member] for member, why in BAD_NAMES.items()), got
    assert len(staged_files(tmp_path)) == 2


@pytest.mark.parametrize("name", ["junk.zip", "junk.tar.gz", "junk.tar"])
def test_corrupt_archive_raises_invalid_input(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"this is not an archive at all" * 40)
    with pytest.raises(InvalidInput, match=f"{name} is not a readable zip/tar archive"):
        extract(tmp_path / name, tmp_path)


def test_truncated_tar_keeps_what_was_read(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "cut.tar", [("a.md", b"# a"), ("b.txt", os.urandom(100_000))])
    archive.write_bytes(archive.read_bytes()[:50_000])
    staged = extract(archive, tmp_path)
    assert [f.filename for f in staged.files] == ["a.md"]
    assert reasons(staged) == {
        "b.txt": "unreadable (ReadError: unexpected end of data)",
        "cut.tar": "the rest is unreadable (unexpected end of data)",
    }


# -- manifests --------------------------------------------------------------------------------


def test_parse_manifest_reports_line_numbers() -> None:
    lines = [
        '{"path": "a.md", "metadata": {"team": "ops"}, "title": "A"}',
        "",
        "{not json",
        '["a.md"]',
        '{"path": "b.md", "url": "https://x.test/b.md"}',
        '{"id": "x"}',
        '{"path": "c.md", "id": 3}',
        '{"path": "c.md", "metadata": ["x"]}',
        '{"path": "c.md", "meta": {}}',
        '{"url": "https://x.test/d", "id": "d.html", "title": null}',
        '{"path": "a.md"}',
    ]
    entries, rejected = parse_manifest(lines)
    assert entries == [
        ManifestEntry(1, "a.md", None, "a.md", {"team": "ops"}, "A"),
        ManifestEntry(10, None, "https://x.test/d", "d.html", {}, None),
    ]
    got = {r.name: r.reason for r in rejected}
    assert got["line 3"].startswith("not valid JSON")
    assert got["line 4"] == "expected a JSON object"
    assert got["line 5"] == got["line 6"] == 'give exactly one of "path" or "url"'
    assert got["line 7"] == '"id" must be a non-empty string'
    assert got["line 8"] == '"metadata" must be a JSON object'
    assert got["line 9"] == "unknown field(s): meta"
    assert got["line 11"] == "duplicate id (first on line 1)"
    assert "line 2" not in got


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.md").write_text("# a")
    (root / "sub" / "tool.exe").write_text("MZ")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "inside.md").symlink_to(root / "sub" / "a.md")
    return root


def entry(path: str | None = None, url: str | None = None, id: str | None = None) -> ManifestEntry:
    return ManifestEntry(1, path, url, id or path or url or "", {"k": "v"}, None)


def test_stage_manifest_paths(tmp_path: Path, roots: Path) -> None:
    entries = [
        entry("sub/a.md"),
        entry(str(roots / "inside.md"), id="policy-7"),
        entry("sub/a.md", id="handbook.md"),
        entry(str(tmp_path / "secret.txt")),
        entry("escape.txt"),
        entry("../secret.txt"),
        entry("sub/missing.md"),
        entry("sub"),
        entry("sub/tool.exe"),
        entry("sub/a.md", id="again"),
        entry("sub/nul\x00.md"),
        entry("loop.md"),
    ]
    (roots / "loop.md").symlink_to(roots / "loop.md")
    staged = stage_manifest(
        entries, tmp_path / "s", allowed_roots=[roots], allowed_hosts=[], max_bytes=MiB
    )
    assert [(f.filename, f.metadata, f.path.read_text()) for f in staged.files] == [
        ("sub/a.md", {"k": "v"}, "# a"),
        (str(roots / "inside.md"), {"k": "v"}, "# a"),  # the id has no extension
        ("handbook.md", {"k": "v"}, "# a"),
    ]
    got = reasons(staged)
    assert got.pop("sub/tool.exe").startswith("unsupported file type ('.exe')")
    assert got.pop("loop.md").startswith("invalid path")  # a symlink loop
    assert got == {
        str(tmp_path / "secret.txt"): "path is outside the allowed folders",
        "escape.txt": "path is outside the allowed folders",
        "../secret.txt": "path is outside the allowed folders",
        "sub/missing.md": "file not found",
        "sub": "is a folder, not a file",
        "again": "another entry already has the file name 'sub/a.md'",
        "sub/nul\x00.md": "invalid path (embedded null byte)",
    }
    assert len(list((tmp_path / "s").iterdir())) == 3


def test_folder_and_manifest_files_with_bad_names_are_rejected_alone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    for name in ["ok.md", "invoice\u202efdp.md", "c1\x9b.md", "tab\t.md"]:
        (root / "docs" / name).write_text("# x")
    staged, _ = stage_folder(Path("docs"), tmp_path / "s", allowed_roots=[root], max_bytes=MiB)
    assert [f.filename for f in staged.files] == ["docs/ok.md"]
    got = reasons(staged)
    assert "U+202E is a bidirectional text control" in got["docs/invoice\u202efdp.md"]
    assert "U+009B is a control character" in got["docs/c1\x9b.md"]
    assert "U+0009 is a control character" in got["docs/tab\t.md"]
    spoofed = entry("docs/ok.md", id="report\u2067gpj.md")  # a manifest's id names the file
    staged = stage_manifest(
        [spoofed], tmp_path / "s", allowed_roots=[root], allowed_hosts=[], max_bytes=MiB
    )
    assert not staged.files
    assert "U+2067" in reasons(staged)["report\u2067gpj.md"]


def test_paths_are_disabled_without_allowed_roots(tmp_path: Path, roots: Path) -> None:
    staged = stage_manifest(
        [entry("sub/a.md")], tmp_path / "s", allowed_roots=[], allowed_hosts=[], max_bytes=MiB
    )
    assert "RAG_INGEST__ALLOWED_ROOTS" in reasons(staged)["sub/a.md"]


def test_url_allow_list(tmp_path: Path) -> None:
    assert _host_allowed("example.com", ["Example.COM"])
    assert _host_allowed("docs.example.com", ["*.example.com"])
    assert _host_allowed("a.b.example.com", ["*.example.com"])
    assert not _host_allowed("example.com", ["*.example.com"])
    assert not _host_allowed("badexample.com", ["*.example.com", "example.org"])
    urls = ["https://evil.test/a.md", "ftp://example.com/a.md", "https://badexample.com/a.md"]
    urls.append("http://[::1/a.md")
    staged = stage_manifest(
        [entry(url=u) for u in urls],
        tmp_path,
        allowed_roots=[],
        allowed_hosts=["*.example.com"],
        max_bytes=MiB,
    )
    assert reasons(staged) == {
        urls[0]: "host not in the allowed hosts (evil.test)",
        urls[1]: "only http and https URLs can be fetched (ftp://example.com/a.md)",
        urls[2]: "host not in the allowed hosts (badexample.com)",
        urls[3]: "invalid URL (http://[::1/a.md)",
    }
    staged = stage_manifest(
        [entry(url=urls[0])], tmp_path, allowed_roots=[], allowed_hosts=[], max_bytes=MiB
    )
    assert "RAG_INGEST__ALLOWED_URL_HOSTS" in reasons(staged)[urls[0]]


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/doc.md": (200, {"Content-Type": "text/markdown"}, b"# Doc\n\nHello."),
        "/page": (200, {"Content-Type": "text/html; charset=utf-8"}, b"<h1>Page</h1>"),
        "/blob": (200, {"Content-Type": "application/octet-stream"}, b"\0\1"),
        "/missing.md": (404, {}, b"not here"),
        "/big.txt": (200, {"Content-Type": "text/plain"}, b"x" * 5000),
        "/out.md": (302, {"Location": "http://evil.test/doc.md"}, b""),
        "/in.md": (301, {"Location": "/doc.md"}, b""),
        "/loop.md": (302, {"Location": "/loop.md"}, b""),
    }

    def do_GET(self) -> None:
        status, headers, body = self.routes[self.path.split("?")[0]]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if self.path != "/big.txt?nolength":  # HTTP/1.0: the body then ends when the socket closes
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_urls_from_a_local_server(tmp_path: Path, server: str) -> None:
    names = ["doc.md", "page", "blob", "missing.md", "big.txt", "big.txt?nolength"]
    names += ["out.md", "in.md", "loop.md"]
    entries = [entry(url=f"{server}/{name}") for name in names]
    entries.append(entry(url=f"{server}/page", id="page-again"))
    staged = stage_manifest(
        entries, tmp_path / "s", allowed_roots=[], allowed_hosts=["127.0.0.1"], max_bytes=1000
    )
    doc = b"# Doc\n\nHello."
    assert [(f.filename, f.path.read_bytes()) for f in staged.files] == [
        (f"{server}/doc.md", doc),
        ("page.html", b"<h1>Page</h1>"),  # the format comes from the Content-Type
        (f"{server}/in.md", doc),  # a redirect on the same host is followed
    ]
    assert {name.removeprefix(server + "/"): why for name, why in reasons(staged).items()} == {
        "blob": f"unsupported file type (application/octet-stream at {server}/blob)",
        "missing.md": "HTTP 404 Not Found",
        "big.txt": "larger than the 1000 bytes limit",  # said by Content-Length
        "big.txt?nolength": "larger than the 1000 bytes limit",  # found while streaming
        "out.md": "redirected to a host not in the allowed hosts (evil.test)",
        "loop.md": "more than 3 redirects",
        "page-again": "another entry already has the file name 'page.html'",
    }
    assert len(list((tmp_path / "s").iterdir())) == len(staged.files)


def test_unreachable_url_is_rejected(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/doc.md"
    staged = stage_manifest(
        [entry(url=url)], tmp_path, allowed_roots=[], allowed_hosts=["127.0.0.1"], max_bytes=MiB
    )
    assert reasons(staged)[url].startswith("could not fetch the URL (ConnectError")


# -- folders ----------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in [
        "a.md",
        "tool.exe",
        ".hidden.md",
        ".git/x.md",
        "drafts/d.md",
        "reports/q1.pdf",
        "reports/2024/q2.PDF",
        "reports/2024/raw.exe",
        "deep/x/drafts/y.md",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    return tmp_path


def walk(
    root: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    found, skipped = walk_folder(root, include=include, exclude=exclude)
    return [p.relative_to(root).as_posix() for p in found], [
        p.relative_to(root).as_posix() for p in skipped
    ]


def test_walk_folder_globs(tree: Path) -> None:
    everything = [
        "a.md",
        "deep/x/drafts/y.md",
        "drafts/d.md",
        "reports/2024/q2.PDF",
        "reports/q1.pdf",
    ]
    assert walk(tree) == (everything, ["reports/2024/raw.exe", "tool.exe"])
    assert walk(tree, ["**/*.pdf"]) == (["reports/q1.pdf"], [])
    assert walk(tree, ["*.md"]) == (["a.md", "deep/x/drafts/y.md", "drafts/d.md"], [])
    assert walk(tree, ["reports/*.pdf"]) == (["reports/q1.pdf"], [])
    assert walk(tree, ["reports/**"], ["*.exe"]) == (["reports/2024/q2.PDF", "reports/q1.pdf"], [])
    assert walk(tree, exclude=["drafts/**"])[0] == [e for e in everything if e != "drafts/d.md"]
    assert walk(tree, exclude=["drafts"])[0] == ["a.md", "reports/2024/q2.PDF", "reports/q1.pdf"]
    assert walk(tree, ["reports"], ["**/2024/**"]) == (["reports/q1.pdf"], [])
    with pytest.raises(InvalidInput):
        walk_folder(tree / "a.md")


def test_walk_folder_keeps_only_links_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.md").write_text("a")
    (tmp_path / "outside.md").write_text("secret")
    (root / "in.md").symlink_to(root / "sub" / "a.md")
    (root / "out.md").symlink_to(tmp_path / "outside.md")
    (root / "linked").symlink_to(tmp_path, target_is_directory=True)
    assert walk(root) == (["in.md", "sub/a.md"], [])
