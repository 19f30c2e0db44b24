"""The operating-system packages installed in a container image, and which of them owns each binary: read from
the package database of the image's final filesystem, as syft catalogues an image.

- Debian and Ubuntu: dpkg's `var/lib/dpkg/status` (the packages whose files are on disk: not those removed with
  only their configuration files left) with each package's file list `var/lib/dpkg/info/PKG[:ARCH].list`; and
  distroless images' `var/lib/dpkg/status.d/PKG` (a package's control paragraph) with `PKG.md5sums` (its files).
- Fedora, RHEL 9, Amazon Linux 2023 and others: RPM's SQLite database (`var/lib/rpm/rpmdb.sqlite`, or
  `usr/lib/sysimage/rpm/rpmdb.sqlite`): each package's header, its file list from the header's directory and
  base names. (Not a write-ahead log beside the database, which rpm checkpoints when it closes it.)
- RHEL 8 and older, CentOS, Amazon Linux 2: RPM's Berkeley DB (`var/lib/rpm/Packages`), a hash database of the
  same headers, in either byte order. When an image has both, the SQLite one is read (rpm converted it). (RPM's
  NDB format, SUSE's `Packages.db`, is not read.)
- Python packages, wherever an image installed them (site-packages, dist-packages, a virtual environment), as
  syft's Python cataloger finds them: a `NAME-VERSION.dist-info` directory's `METADATA` (its Name and Version)
  with its `RECORD` (the files the installer wrote, relative to the directory holding the .dist-info, and their
  sha256 digests); an `.egg-info` directory's `PKG-INFO` with its `installed-files.txt` (relative to the
  .egg-info directory), or an `.egg-info` file (PKG-INFO alone: no files). Type `pypi`, as a wheel's; a binary
  an OS package installed is that package's even when a Python package's RECORD lists it too (pip run over a
  file dpkg installed, or dpkg over one pip did).
- npm packages, wherever an image installed them (an application's `node_modules`, npm's global
  `usr/local/lib/node_modules`, nested copies, pnpm's `node_modules/.pnpm/NAME@VERSION/node_modules/NAME`), as
  syft's JavaScript cataloger finds them: a `node_modules/NAME/package.json` (or `node_modules/@SCOPE/NAME/`)'s
  `name` and `version`. npm keeps no list of the files it installed: a package owns what lies in its directory,
  but not in a package directory below it (its own `node_modules`), and not what an OS or Python package owns.
- conda packages, in every conda environment of an image (`opt/conda`, `opt/conda/envs/NAME`: the directory
  holding a `conda-meta`), as conda (and mamba, pixi, rattler) records them: `conda-meta/NAME-VERSION-BUILD.json`,
  its `name`, `version`, `build` and `subdir`, with the files it installed (`files`, relative to the
  environment) and their SHA-256 digests (`paths_data`). Owned before a Python package's RECORD (conda installed
  the files a conda package's .dist-info lists).
- RubyGems, in every gem directory (`var/lib/gems/3.1.0`, `usr/local/bundle`, a vendor/bundle): each
  `specifications/NAME-VERSION[-PLATFORM].gemspec` that gem wrote at install (its `# stub:` line, as rubygems
  reads it: name, version, platform), owning what lies in `gems/FULL_NAME/` and `extensions/*/*/FULL_NAME/` (its
  compiled extensions): gem keeps no list of the files it wrote.
- The distribution, for the package URLs: `etc/os-release` (or `usr/lib/os-release`): `ID` and `VERSION_ID`.

The layers give the database files as the tar members they are (Tracker, in the order the layers are applied,
whiteouts and all); a path a package lists is resolved through the image's own directory symlinks (`/bin/ls` is
`usr/bin/ls` where /bin is a symlink to usr/bin, as dpkg lists files on a merged-/usr system). Every read is
bounded: a database file over MAX_FILE bytes, or files beyond MAX_TOTAL bytes together, are not read (the
packages they would name are left out)."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from analyzer.load.pathset import PathSet

# bytes of one database file (a status file of a large system is a few MB, an RPM database tens), and of all of an
# image's database files together: held in memory while its layers are applied (a scan of a 2 GB image stays
# within its 500 MB)
MAX_FILE = 96 << 20
MAX_TOTAL = 128 << 20
PATH_MAX = 4096  # (Linux's: no longer path can be opened, so none was installed)
# packages, and listed files, read of one image: a full desktop system has a few thousand packages and a few
# hundred thousand files; each costs a Python object or three (a hostile status file of tiny paragraphs and a
# list of short lines, 180 MB, took 3.7 GB). Beyond them, packages are left out, and files not read.
MAX_PACKAGES = 100_000
MAX_FILES = 1_000_000
# characters of path prefixes looked up while resolving an image's package file lists (a real image: a few
# million; a hostile one, with a symlink thousands of components deep and long paths through it, would take
# hours: its later paths are not resolved, and own nothing)
RESOLVE_BUDGET = 256 << 20
DPKG = "var/lib/dpkg/"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
OS_RELEASE_MAX = 1 << 16  # bytes of an os-release read (a real one is under 1 KB)
RPMDB = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/Packages",
         "usr/lib/sysimage/rpm/Packages")  # (in the order they are preferred: the first an image has is read)
SQL_STEPS = 50_000_000  # SQLite's virtual machine steps allowed to read an RPM database (a hostile one may loop)
# the files of a Python package's metadata read (their names' ends), and those of them read for their first
# header fields only: a METADATA file's long description follows them (numpy's is 60 KB, some a few MB)
PY_FILES = (".dist-info/METADATA", ".dist-info/RECORD", ".egg-info/PKG-INFO", ".egg-info/installed-files.txt",
            ".egg-info")
PY_HEADERS = (".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")
PY_HEADERS_MAX = 1 << 16
NPM_MANIFEST = "/package.json"
NPM_MAX = 1 << 20  # bytes of an npm package's package.json read (a real one is a few KB; a larger one: left out)
# bytes of a conda-meta record read (a package of 15,000 files has one of 5 MB; JSON of the smallest strings costs
# a dozen times its size in Python objects: a larger one is left out)
CONDA_MAX = 16 << 20
# dpkg's Status words whose package has no files on disk
_GONE = ("not-installed", "config-files")


def wanted(rel: str) -> bool:
    """Whether the image's file at `rel` is part of a package database binlens reads."""
    if rel.startswith(DPKG):
        rest = rel[len(DPKG):]
        return rest == "status" or (rest.startswith("info/") and rest.endswith((".list", ".md5sums"))
                                    and rest.count("/") == 1) or (rest.startswith("status.d/") and rest.count("/") == 1)
    return rel in OS_RELEASE or rel in RPMDB or rel.endswith(PY_FILES) or npm_manifest(rel) or conda_record(rel) \
        or gem_spec(rel)


def gem_spec(rel: str) -> bool:
    """Whether `rel` is a gem's installed specification: `GEM_HOME/specifications/FULL_NAME.gemspec`."""
    return rel.endswith(".gemspec") and rel.rpartition("/")[0].rpartition("/")[2] == "specifications"


def conda_record(rel: str) -> bool:
    """Whether `rel` is a conda environment's record of one package: `conda-meta/NAME-VERSION-BUILD.json`."""
    return rel.endswith(".json") and rel.rpartition("/")[0].rpartition("/")[2] == "conda-meta"


def npm_manifest(rel: str) -> bool:
    """Whether `rel` is an npm package's package.json: `node_modules/NAME/package.json` or
    `node_modules/@SCOPE/NAME/package.json` (not one of a package's own files further down, nor npm's
    `node_modules/.bin`, `.pnpm` or `.package-lock.json`)."""
    if not rel.endswith(NPM_MANIFEST):
        return False
    parts = rel.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules":
        return not parts[-2].startswith((".", "@"))
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@") and len(parts[-3]) > 1 \
        and not parts[-2].startswith(".")


def npm_compact(data: bytes) -> bytes:
    """What binlens keeps of a package.json: its `name` and `version` (JSON strings: b"" when it has none), not
    the manifest (an image holds thousands of them)."""
    import json

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return b""
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not isinstance(doc.get("version"), str) \
            or not doc["name"] or not doc["version"]:  # fmt: skip
        return b""
    return json.dumps([doc["name"], doc["version"]]).encode()


class Tracker:
    """The database files and symlinks of an image's final filesystem, as its layers are applied."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}  # a symlink's path → its target
        self.kept = PathSet()  # the paths of files and links (a whiteout finds those under a directory there)
        self.read = 0
        self.manifests = 0  # npm package.json files read (each kept as a few bytes, in a Python object or two)
        self.npm_read = 0  # and their bytes (at most MAX_TOTAL of them are read)
        self.deepest = 0  # the components of the deepest symlink's path
        self.budget = RESOLVE_BUDGET  # characters of prefixes looked up by resolve(), left
        self.fresh: set[str] = set()  # the paths the layer being applied put (its whiteouts do not reach them)

    def next_layer(self) -> None:
        self.fresh = set()

    def forget(self, path: str, itself: bool = True) -> None:
        """A whiteout of `path` (or, with itself=False, an opaque directory: what lay under it), in the lower
        layers: not what the layer applying it put (the OCI image spec)."""
        self._drop(k for k in [*([path] if itself else []), *self.kept.under(path)] if k not in self.fresh)

    def _drop(self, paths: Iterable[str]) -> None:
        for k in paths:
            self.files.pop(k, None)
            self.links.pop(k, None)
            self.kept.discard(k)

    def entry(self, rel: str, info: Any, tf: Any) -> bool:
        """A layer's member at `rel` replaces what was there (one that is no directory: a directory with all it
        holds); True when it is a database file (now read)."""
        # (what is replaced here goes, whichever layer put it)
        self._drop([rel, *self.kept.under(rel)] if not info.isdir() else [rel] if rel in self.kept else [])
        if info.issym():
            self.links[rel] = info.linkname
            self.deepest = max(self.deepest, rel.count("/") + 1)
            self.kept.add(rel)
            self.fresh.add(rel)
            return False
        if not info.isreg() or not wanted(rel):
            return False
        f = tf.extractfile(info)
        return self.file(rel, info.size, f.read if f is not None else lambda n: b"")

    def file(self, rel: str, size: int, read: Callable[[int], bytes]) -> bool:
        """A database file at `rel` (wanted) of `size` bytes, read with read(n) unless that would break the
        bounds (then its packages are left out). True: it is a database file, read or not."""
        size = min(size, PY_HEADERS_MAX) if rel.endswith(PY_HEADERS) or gem_spec(rel) else size
        npm = npm_manifest(rel)
        most = NPM_MAX if npm else CONDA_MAX if conda_record(rel) else MAX_FILE
        if size > most or self.read + size > MAX_TOTAL or \
                (npm and (self.manifests >= MAX_PACKAGES or self.npm_read + size > MAX_TOTAL)):  # fmt: skip
            return True
        data = read(size)
        if npm:
            self.npm_read += len(data)  # (what reading them costs, though little of each is kept)
            data = npm_compact(data)
            self.manifests += 1
        self.read += len(data)
        self.files[rel] = data
        self.kept.add(rel)
        self.fresh.add(rel)
        return True

    def resolve(self, path: str) -> str | None:
        """An absolute path a package lists, as the image's file it is: its directories' symlinks followed
        within the image (an absolute target is the image's root; `..` stops at the root, as in a chroot). None
        for a path longer than Linux's PATH_MAX (no such file can have been installed), with too many
        symlinks on the way (40, as the kernel's ELOOP), or once RESOLVE_BUDGET is spent. Only a prefix as deep
        as the image's deepest symlink can be one: the rest of a path is taken as it is (a listed path thousands
        of components deep costs its length, not its length squared)."""
        if len(path) > PATH_MAX:
            return None
        deepest = self.deepest
        parts = [p for p in path.split("/") if p and p != "."]
        parts.reverse()  # (a stack: the next component last)
        cur: list[str] = []  # the resolved prefix, a component each
        joined: list[str] = []  # joined[i]: cur[:i + 1] joined, while within the deepest symlink's depth
        hops = 0
        while parts:
            part = parts.pop()
            if part == "..":
                if cur:
                    cur.pop()
                    del joined[len(cur):]
                continue
            if len(cur) >= deepest or not parts:  # (the last component is the listed file itself)
                cur.append(part)
                continue
            here = f"{joined[-1]}/{part}" if cur else part
            self.budget -= len(here)
            if self.budget < 0:
                return None
            target = self.links.get(here)
            if target is None:
                cur.append(part)
                joined.append(here)
                continue
            hops += 1
            if hops > 40 or len(target) > PATH_MAX:
                return None
            parts.extend(reversed([p for p in target.split("/") if p and p != "."]))
            if target.startswith("/"):
                cur, joined = [], []
        return "/".join(cur)


class _DiskLinks(dict):
    """A directory tree's symlinks (path below the root → target), read from the disk as Tracker.resolve asks
    for each prefix (a walk does not follow them: a merged /usr's bin → usr/bin is found here)."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root

    def get(self, rel: str, default: Any = None) -> Any:
        if rel not in self:
            try:
                self[rel] = os.readlink(os.path.join(self.root, rel))
            except (OSError, ValueError):
                self[rel] = None
        found = self[rel]
        return default if found is None else found


def read_directory(root: str, files: list[str]) -> tuple[dict[str, Any] | None,
                                                     dict[str, list[tuple[int, str, str]]]]:
    """The packages installed in a directory tree (a root filesystem, a virtual environment), as in an image:
    its files below `root` (a walk's, symlinks not followed), the package databases among them read within the
    same bounds; and each of those files (by its path as given) with the packages that list it (read's
    `defer`), binaries or not. Nothing is hashed here: a file's digest is checked against its package's
    (verify) only when the scan reports it, or a member of it, as a binary — a tree's other files are never
    opened (a root filesystem lists a hundred thousand). (None, {}) without a package database."""
    from analyzer.load import open_regular

    tracker = Tracker()
    prefix = root if root.endswith(os.sep) else root + os.sep  # (the walk's paths: the root joined with theirs)
    for f in files:  # (no list of the names made: a tree without a package database needs none)
        rel = f[len(prefix):].replace(os.sep, "/")
        if not wanted(rel) or (fh := open_regular(f)) is None:
            continue
        with fh:
            try:
                tracker.file(rel, os.fstat(fh.fileno()).st_size, fh.read)
            except OSError:
                continue
    if not tracker.files:
        return None, {}
    tracker.links = _DiskLinks(root)
    tracker.deepest = PATH_MAX
    candidates: dict[str, list[tuple[int, str, str]]] = {}
    found, _ = read(tracker, {f[len(prefix):].replace(os.sep, "/"): f for f in files}, defer=candidates)
    return found or {"distro": distro(tracker.files), "packages": []}, candidates


def verify(found: dict[str, Any], file: str, candidates: list[tuple[int, str, str]],
           digest: Callable[[str, str], str | None]) -> int | None:
    """The package (its index in found's packages) owning a directory tree's `file` among those listing it
    (read_directory's candidates, in order): the first whose digest of it is its content's (`digest(file,
    algo)`; a package with none for it, or a file that cannot be read, takes it as listed); each one whose
    digest is not gets the file in its `modified` (kept sorted), as read() has it for an image. None when no
    package owns it."""
    import bisect

    owner = None
    seen: dict[str, str | None] = {}
    for index, algo, expected in candidates:
        if expected:
            if algo not in seen:
                seen[algo] = digest(file, algo)
            if seen[algo] not in (None, expected):
                changed = found["packages"][index].setdefault("modified", [])
                if file not in changed:
                    bisect.insort(changed, file)
                continue
        if owner is None:
            owner = index
    return owner


def _lines(text: str) -> Iterator[str]:
    """The lines of a database file, one at a time, split at newlines as dpkg splits them (no list of them all:
    a status file of tiny paragraphs has millions)."""
    at = 0
    while at < len(text):
        end = text.find("\n", at)
        if end < 0:
            end = len(text)
        yield text[at:end]
        at = end + 1


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs, one at a time: field names folded to lower case, continuation lines joined."""
    cur: dict[str, str] = {}
    key = None
    for line in _lines(text):
        if not line.strip():
            if cur:
                yield cur
            cur, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                cur[key] += "\n" + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            cur[key] = value.strip()
    if cur:
        yield cur


def _text(data: bytes) -> str:
    """A database file's text: bytes that are not UTF-8 kept as tarfile keeps them in member names (so listed
    paths meet the image's files); the names shown go through _name."""
    return data.decode("utf-8", "surrogateescape")


def _name(value: str) -> str:
    """A name read from the database as reports show it (errors.name_text: \\xNN for bytes that are not UTF-8 and
    control characters)."""
    from analyzer.errors import name_text

    return name_text(value.encode("utf-8", "surrogateescape"))


def release_name(found: dict[str, str], sep: str = "-") -> str:
    """An os-release's ID and VERSION_ID as one name (`debian-12`; with sep " ", `debian 12`), "" without them."""
    return sep.join(x for x in (found.get("id"), found.get("version_id")) if x)


def _identity(p: dict[str, str]) -> dict[str, Any] | None:
    name, version = p.get("package"), p.get("version")
    if not name or not version:
        return None
    arch = p.get("architecture")
    out: dict[str, Any] = {"type": "deb", "name": _name(name), "version": _name(version),
                           "arch": _name(arch) if arch else None}
    source = re.match(r"\s*([^\s(]+)", p.get("source", ""))
    if source and source[1] != name:
        out["source"] = _name(source[1])
    return out


def distro(files: dict[str, bytes], keys: tuple[str, ...] = ("ID", "VERSION_ID")) -> dict[str, str]:
    """ID and VERSION_ID (or `keys`) of the image's os-release (etc/ first, as systemd reads it; its first
    OS_RELEASE_MAX bytes), lower-case keys."""
    for rel in OS_RELEASE:
        if rel in files:
            found = {}
            for line in _lines(_text(files[rel][:OS_RELEASE_MAX])):
                key, sep, value = line.partition("=")
                if sep and key.strip() in keys:
                    found[key.strip().lower()] = _name(value.strip().strip("\"'"))
            return found
    return {}


def _md5sums(data: bytes) -> dict[str, str]:
    """A dpkg md5sums file: absolute path → `md5:HEX` of the file as the package installed it."""
    out = {}
    for line in _lines(_text(data)):
        digest, _, path = line.partition(" ")
        if path.strip():
            out["/" + path.strip().lstrip("/")] = "md5:" + digest.lower()
    return out


def read(tracker: Tracker, members: dict[str, str], digest: Callable[[str, str], str | None] | None = None,
         defer: dict[str, list[tuple[int, str, str]]] | None = None) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """The installed packages of an image ({distro, packages}: None without a package database) and the owner
    (an index in packages) of each member, from its path in the image (`members`: path → member name). With
    `digest` (a member's hex digest by an algorithm, md5 or sha256), a binary whose content is not what the
    package's database says (dpkg's md5sums, an RPM header's file digests: replaced after the package was
    installed) is not the package's: it is listed in the package's `modified`. With `defer`, nothing is checked
    here and no owner given: each member's candidates are put there instead, in the order they are asked —
    (index, algo, expected digest or "") — for verify() to decide as the member is reported."""
    files = tracker.files
    packages: list[dict[str, Any]] = []
    lists: list[list[str]] = []  # each package's files, absolute
    sums: list[dict[str, str]] = []  # each package's files' digests (`md5:HEX`, `sha256:HEX`), by absolute path
    left = [MAX_FILES]  # (listed files still to be read: a package beyond it is read without its files)

    def take(*listings: bytes) -> bool:
        n = sum(data.count(b"\n") + 1 for data in listings if data)
        if n > left[0]:
            return False
        left[0] -= n
        return True

    status = files.get(DPKG + "status")
    if status is not None:
        for p in _paragraphs(_text(status)):
            words = p.get("status", "").split()
            ident = _identity(p)
            if ident is None or len(words) != 3 or words[2] in _GONE:
                continue
            if len(packages) >= MAX_PACKAGES:
                break
            raw, arch = p["package"], p.get("architecture")  # (as the database names its files)
            names = [f"{raw}:{arch}", raw] if arch else [raw]
            listed = next((files[f"{DPKG}info/{n}.list"] for n in names if f"{DPKG}info/{n}.list" in files), b"")
            md5 = next((files[f"{DPKG}info/{n}.md5sums"] for n in names if f"{DPKG}info/{n}.md5sums" in files), b"")
            if not take(listed, md5):
                listed = md5 = b""
            packages.append(ident)
            lists.append(list(_lines(_text(listed))))
            sums.append(_md5sums(md5))
    for rel in sorted(files):
        if rel.startswith(DPKG + "status.d/") and not rel.endswith(".md5sums"):
            for p in _paragraphs(_text(files[rel])):
                if (ident := _identity(p)) is not None and len(packages) < MAX_PACKAGES:
                    md5 = files.get(rel + ".md5sums", b"")
                    packages.append(ident)
                    sums.append(_md5sums(md5 if take(md5) else b""))
                    lists.append(list(sums[-1]))
    for rel in RPMDB:
        if rel in files:
            for found, paths, digests in rpm_packages(rel, files[rel], left, MAX_PACKAGES - len(packages)):
                packages.append(found)
                lists.append(paths)
                sums.append(digests)
            break
    for found, paths, digests in python_packages(files, take, MAX_PACKAGES - len(packages)):
        packages.append(found)
        lists.append(paths)
        sums.append(digests)
    for found, paths, digests in conda_packages(files, take, MAX_PACKAGES - len(packages)):
        packages.append(found)
        lists.append(paths)
        sums.append(digests)
    npm: dict[str, int] = {}  # an npm package's directory → its index in packages
    for found, folder in npm_packages(files, MAX_PACKAGES - len(packages)):
        npm[folder] = len(packages)
        packages.append(found)
        lists.append([])
        sums.append({})
    gems: dict[str, dict[str, int]] = {}  # a gem directory → a gem's full name → its index in packages
    for found, home, full in gem_packages(files, MAX_PACKAGES - len(packages)):
        gems.setdefault(home, {})[full] = len(packages)
        packages.append(found)
        lists.append([])
        sums.append({})
    if not packages:
        return None, {}
    order = sorted(range(len(packages)), key=lambda i: (packages[i]["name"], packages[i].get("arch") or "",
                                                        packages[i]["version"], packages[i].get("release") or "",
                                                        packages[i].get("location") or ""))
    owners: dict[str, int] = {}
    modified: dict[int, set[str]] = {}
    basenames = {p.rpartition("/")[2] for p in members}  # (a listed file of another name is no binary of the image)
    seen: dict[tuple[str, str], str | None] = {}
    rank = [_RANK.get(packages[i]["type"], 0) for i in order]
    for index in sorted(range(len(order)), key=rank.__getitem__):  # (an OS package's files first: see above)
        i = order[index]
        for path in lists[i]:
            if path.rpartition("/")[2] not in basenames or (where := tracker.resolve(path)) is None \
                    or (member := members.get(where)) is None:  # fmt: skip
                continue
            algo, _, expected = sums[i].get(path, "").partition(":")
            if defer is not None:
                defer.setdefault(member, []).append((index, algo if expected else "", expected))
                continue
            if expected and digest is not None:
                if (member, algo) not in seen:
                    seen[member, algo] = digest(member, algo)
                if seen[member, algo] not in (None, expected):
                    modified.setdefault(index, set()).add(member)
                    continue
            owners.setdefault(member, index)
    if npm or gems:  # (what no OS or Python package lists: the npm package or gem whose directory holds it)
        place = {i: n for n, i in enumerate(order)}
        for path, member in members.items():
            if member in owners:
                continue
            held = _npm_owner(path, npm) if npm and "node_modules/" in path else None
            if held is None and gems:
                held = _gem_owner(path, gems)
            if held is not None:
                if defer is not None:
                    defer.setdefault(member, []).append((place[held], "", ""))
                else:
                    owners[member] = place[held]
    shown = [{**packages[i], **({"modified": sorted(modified[n])} if n in modified else {})}
             for n, i in enumerate(order)]
    return {"distro": distro(files), "packages": shown}, owners


def _record(data: bytes, base: str) -> tuple[list[str], dict[str, str]]:
    """A dist-info RECORD (CSV rows: path, `sha256=` urlsafe base64 digest, size) as absolute paths in the image,
    the relative ones below `base` (the directory holding the .dist-info), and their digests (`sha256:HEX`)."""
    import base64
    import binascii
    import csv

    paths: list[str] = []
    sums: dict[str, str] = {}
    # (a line longer than any path with its digest is no file's: left out before csv, which refuses a field over
    # 128 KiB; a quoted field that never ends ends the reading, what came before kept)
    rows = csv.reader(line for line in _lines(_text(data)) if len(line) <= PATH_MAX + 256)
    while True:
        try:
            row = next(rows)
        except (StopIteration, csv.Error):
            break
        if not row or not row[0]:
            continue
        path = row[0] if row[0].startswith("/") else f"/{base}/{row[0]}" if base else f"/{row[0]}"
        paths.append(path)
        algo, _, value = row[1].partition("=") if len(row) > 1 else ("", "", "")
        if algo == "sha256" and value:
            try:
                sums[path] = "sha256:" + base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
            except (binascii.Error, ValueError):
                pass  # (a digest that is none: the file is taken as listed)
    return paths, sums


def python_packages(files: dict[str, bytes], take: Callable[..., bool],
                    room: int) -> Iterator[tuple[dict[str, Any], list[str], dict[str, str]]]:
    """The Python packages among an image's database files (see the module's notes), in the order of their
    metadata's paths: each one's identity, the absolute paths of its files and their digests. At most `room`
    packages; `take(listing)` says whether a file list still fits within MAX_FILES (else it is not read)."""
    from analyzer.load.packages import _fields

    for rel in sorted(files):
        if not rel.endswith(PY_HEADERS):
            continue
        if room <= 0:
            return
        folder, _, leaf = rel.rpartition("/")  # (the .dist-info or .egg-info directory; the .egg-info file)
        if leaf == ".egg-info":
            continue  # (a file named .egg-info alone is no package's)
        fields = _fields(_text(files[rel]), ":")  # (its header fields: up to the first empty line)
        name, version = fields.get("Name"), fields.get("Version")
        if not name or not version:
            continue
        site = folder.rpartition("/")[0] if leaf in ("METADATA", "PKG-INFO") else folder
        paths: list[str] = []
        sums: dict[str, str] = {}
        if leaf == "METADATA":
            listing = files.get(folder + "/RECORD", b"")
            if take(listing):
                paths, sums = _record(listing, site)
        elif leaf == "PKG-INFO":
            listing = files.get(folder + "/installed-files.txt", b"")
            if take(listing):
                paths = [line if line.startswith("/") else f"/{folder}/{line}" for line in _lines(_text(listing))
                         if line.strip()]  # fmt: skip
        room -= 1
        yield {"type": "pypi", "name": _name(name), "version": _name(version), "arch": None,
               "location": _name(site) or "."}, paths, sums  # (the root: a Lambda zip's)


_RANK = {"conda": 1, "pypi": 2}  # who owns a file listed twice: an OS package, a conda package, a Python one
# the package types a language's installer records (no OS package manager's: no distribution in their package
# URLs), in the order the text summary counts them: its line's title, and the word `binlens diff` shows beside the
# directory one lies in
LANGUAGES = {"conda": ("conda packages", "conda"), "pypi": ("PyPI packages", "Python"),
             "npm": ("npm packages", "npm"), "gem": ("gems", "gem")}


def conda_packages(files: dict[str, bytes], take: Callable[..., bool],
                   room: int) -> Iterator[tuple[dict[str, Any], list[str], dict[str, str]]]:
    """The conda packages among an image's database files (their conda-meta records), in the order of their
    paths: each one's identity (its `location` the environment), the absolute paths of its files and their
    digests. At most `room` packages; a record that is no JSON object with a name and a version names none."""
    import json

    for rel in sorted(files):
        if not conda_record(rel):
            continue
        if room <= 0:
            return
        try:
            doc = json.loads(files[rel])
        except (ValueError, RecursionError):
            continue
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) and doc[k] for k in ("name", "version")):
            continue
        env = rel.rpartition("/")[0].rpartition("/")[0]  # (the directory holding conda-meta)
        listed = [f for f in doc.get("files") or [] if isinstance(f, str)] if isinstance(doc.get("files"), list) else []
        entries = (doc.get("paths_data") or {}).get("paths") if isinstance(doc.get("paths_data"), dict) else None
        paths: list[str] = []
        sums: dict[str, str] = {}
        if take("\n".join(listed).encode()):
            paths = [f"/{env}/{f}" if env else f"/{f}" for f in listed]
            for e in entries if isinstance(entries, list) else []:
                if isinstance(e, dict) and isinstance(e.get("_path"), str) and isinstance(e.get("sha256"), str) \
                        and re.fullmatch(r"[0-9a-fA-F]{64}", e["sha256"]):  # fmt: skip
                    sums[f"/{env}/{e['_path']}" if env else f"/{e['_path']}"] = "sha256:" + e["sha256"].lower()
        room -= 1
        yield {"type": "conda", "name": _name(doc["name"]), "version": _name(doc["version"]), "arch": None,
               "location": _name(env) or ".",
               **{k: _name(doc[k]) for k in ("build", "subdir") if isinstance(doc.get(k), str) and doc[k]}}, \
            paths, sums


def npm_packages(files: dict[str, bytes], room: int) -> Iterator[tuple[dict[str, Any], str]]:
    """The npm packages among an image's database files (their package.json, kept as npm_compact keeps it), in
    the order of their paths: each one's identity (its `location` the node_modules directory it lies in) and
    its directory. At most `room` packages."""
    import json

    for rel in sorted(files):
        if not npm_manifest(rel) or not files[rel]:
            continue
        if room <= 0:
            return
        name, version = json.loads(files[rel])
        folder = rel[:-len(NPM_MANIFEST)]
        parent = folder.rpartition("/")[0]
        where = parent.rpartition("/")[0] if parent.rpartition("/")[2].startswith("@") else parent
        room -= 1
        yield {"type": "npm", "name": _name(name), "version": _name(version), "arch": None,
               "location": _name(where)}, folder


def gem_packages(files: dict[str, bytes], room: int) -> Iterator[tuple[dict[str, Any], str, str]]:
    """The gems among an image's database files (their installed specifications), in the order of their paths:
    each one's identity (its `location` the gem directory), the gem directory and its full name. The `# stub:`
    line rubygems writes (name, version, platform) says who it is; a specification without one, its
    `s.name = "..."` and `s.version = "..."` lines. At most `room`."""
    for rel in sorted(files):
        if not gem_spec(rel):
            continue
        if room <= 0:
            return
        text = _text(files[rel])
        stub = re.search(r"(?m)^# stub: (\S+) (\S+) (\S+)", text)
        if stub:
            name, version, platform = stub[1], stub[2], stub[3]
        else:
            got = {k: re.search(rf'(?m)^[ \t]*\w+\.{k} = "([^"\n]+)"', text)  # (blanks only: `\s*` would
                   for k in ("name", "version", "platform")}  # cross lines, quadratic on a file of empty ones)
            if not got["name"] or not got["version"]:
                continue
            name, version = got["name"][1], got["version"][1]
            platform = got["platform"][1] if got["platform"] else "ruby"
        home = rel.rpartition("/")[0].rpartition("/")[0]
        full = rel.rpartition("/")[2].removesuffix(".gemspec")
        room -= 1
        yield {"type": "gem", "name": _name(name), "version": _name(version), "arch": None,
               "location": _name(home) or ".", **({"platform": _name(platform)} if platform != "ruby" else {})}, \
            home, full


def _gem_owner(path: str, gems: dict[str, dict[str, int]]) -> int | None:
    """The gem (its index) whose directory holds the file at `path`: GEM_HOME/gems/FULL_NAME/... or its compiled
    extensions, GEM_HOME/extensions/PLATFORM/API/FULL_NAME/..."""
    for home, installed in gems.items():
        base = f"{home}/" if home else ""
        if not path.startswith(base):
            continue
        parts = path[len(base):].split("/")
        if len(parts) > 2 and parts[0] == "gems" and parts[1] in installed:
            return installed[parts[1]]
        if len(parts) > 4 and parts[0] == "extensions" and parts[3] in installed:
            return installed[parts[3]]
    return None


def _npm_owner(path: str, npm: dict[str, int]) -> int | None:
    """The npm package (its index) whose directory holds the file at `path`: the innermost
    `node_modules/NAME` or `node_modules/@SCOPE/NAME` directory above it that is a package's."""
    at = len(path)
    while (k := path.rfind("node_modules/", 0, at)) >= 0:
        if k == 0 or path[k - 1] == "/":
            parts = path[k + 13:].split("/", 2)
            scoped = parts[0].startswith("@")
            if len(parts) > (2 if scoped else 1):
                folder = path[:k + 13] + ("/".join(parts[:2]) if scoped else parts[0])
                if folder in npm:
                    return npm[folder]
        at = k
    return None


RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH, RPMTAG_SOURCERPM = 1000, 1001, 1002, 1003, \
    1022, 1044
RPMTAG_DIRINDEXES, RPMTAG_BASENAMES, RPMTAG_DIRNAMES = 1116, 1117, 1118
RPMTAG_FILEDIGESTS, RPMTAG_FILEDIGESTALGO = 1035, 5011
_RPM_TAGS = {RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH, RPMTAG_SOURCERPM,
             RPMTAG_DIRINDEXES, RPMTAG_BASENAMES, RPMTAG_DIRNAMES, RPMTAG_FILEDIGESTS, RPMTAG_FILEDIGESTALGO}
_RPM_DIGESTS = {1: "md5", 8: "sha256"}  # (the PGP hash algorithm numbers rpm uses; others are not checked)


def _rpm_header(blob: bytes, most: int = 1 << 62) -> dict[int, Any]:
    """The tags binlens reads of one RPM header as the database keeps it (index count, data size, the index
    entries, the data: no lead, no magic): strings, string arrays and 32-bit integer arrays, within bounds; an
    array of more than `most` entries is not read (a Python string or int for each costs 30-75 times its
    bytes in the header)."""
    if len(blob) < 8:
        return {}
    nindex, hsize = struct.unpack_from(">II", blob, 0)
    base = 8 + 16 * nindex
    if base + hsize > len(blob):
        return {}
    store = blob[base:base + hsize]
    tags: dict[int, Any] = {}
    for k in range(nindex):
        tag, typ, offset, count = struct.unpack_from(">iiii", blob, 8 + 16 * k)
        if tag not in _RPM_TAGS or tag in tags or not 0 <= offset < hsize or not 0 < count <= hsize \
                or (typ != 6 and count > most):  # fmt: skip
            continue  # (a tag given twice: the first; each read copies up to the whole store)
        if typ == 6:  # a string
            end = store.find(b"\0", offset)
            tags[tag] = store[offset:end if end >= 0 else hsize].decode("utf-8", "surrogateescape")
        elif typ in (8, 9):  # a string array
            items = store[offset:].split(b"\0", count)[:count]
            tags[tag] = [x.decode("utf-8", "surrogateescape") for x in items]
        elif typ == 4 and offset + 4 * count <= hsize:  # 32-bit integers
            tags[tag] = list(struct.unpack_from(f">{count}i", store, offset))
    return tags


def rpm_packages(rel: str, data: bytes, left: list[int] | None = None,
                 most: int = 1 << 62) -> list[tuple[dict[str, Any], list[str], dict[str, str]]]:
    """(identity, absolute paths of its files, their digests `ALGO:HEX` by path) of each package in the RPM
    database `rel` (SQLite or Berkeley DB, by its name) holding `data`; none when it cannot be read. gpg-pubkey
    entries (the keys rpm imported) are no packages. At most `most` packages; with `left` (the listed files
    still to be read), a package whose file list is longer is read without its files."""
    out: list[tuple[dict[str, Any], list[str], dict[str, str]]] = []
    for blob in (_sqlite_headers(data) if rel.endswith(".sqlite") else bdb_values(data)):
        if len(out) >= most:
            break
        tags = _rpm_header(blob, left[0] if left is not None else 1 << 62)
        name, version = tags.get(RPMTAG_NAME), tags.get(RPMTAG_VERSION)
        if not name or not version or name == "gpg-pubkey":
            continue
        epoch = tags.get(RPMTAG_EPOCH)
        ident: dict[str, Any] = {"type": "rpm", "name": name, "version": version,
                                 "release": tags.get(RPMTAG_RELEASE), "arch": tags.get(RPMTAG_ARCH),
                                 "epoch": str(epoch[0]) if epoch else None, "source": tags.get(RPMTAG_SOURCERPM)}
        dirs, bases = tags.get(RPMTAG_DIRNAMES, []), tags.get(RPMTAG_BASENAMES, [])
        where = tags.get(RPMTAG_DIRINDEXES, [])
        files = [dirs[i] + b if 0 <= i < len(dirs) else "" for i, b in zip(where, bases, strict=False)]
        algo = _RPM_DIGESTS.get((tags.get(RPMTAG_FILEDIGESTALGO) or [1])[0])
        hexes = tags.get(RPMTAG_FILEDIGESTS, []) if algo else []
        digests = {f: f"{algo}:{h.lower()}" for f, h in zip(files, hexes, strict=False) if f and h}
        shown = {k: _name(v) if isinstance(v, str) else v for k, v in ident.items() if v}
        out.append((shown, [f for f in files if f], digests))
        if left is not None:
            left[0] -= len(files)
    return out


def _sqlite_headers(data: bytes) -> list[bytes]:
    """The headers of an RPM SQLite database (its bytes), by header number; none when it cannot be read."""
    import sqlite3

    steps = [0]

    def progress() -> int:  # (called every 1,000 steps: nonzero stops the statement)
        steps[0] += 1000
        return int(steps[0] > SQL_STEPS)

    con = sqlite3.connect(":memory:")
    try:
        if data[18:20] == b"\x02\x02":  # a database in WAL mode (rpm's): read as a rollback-journal one, as an
            data = data[:18] + b"\x01\x01" + data[20:]  # image holds it checkpointed (memory has no WAL)
        con.deserialize(data)
        con.set_progress_handler(progress, 1000)
        if con.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone() != ("table",):
            return []
        return [bytes(blob) for (blob,) in con.execute("SELECT blob FROM Packages ORDER BY hnum")
                if isinstance(blob, bytes)]  # fmt: skip
    except sqlite3.Error:  # (a damaged or hostile database, or one read past its budget: no packages)
        return []
    finally:
        con.close()


BDB_HASH_MAGIC = 0x061561
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASHMETA, _P_HASH = 2, 7, 8, 13  # Berkeley DB's page types
_H_KEYDATA, _H_OFFPAGE = 1, 3  # its hash items: on the page, or on a chain of overflow pages
_PAGE_HEADER = 26


def bdb_values(data: bytes) -> list[bytes]:
    """The values of a Berkeley DB hash database (its bytes), in page order: each one stored on its hash page or
    on a chain of overflow pages. The database is in the byte order of the machine that wrote it (its magic
    number says which); an encrypted one, or one that is not a hash database, has none. Every page number is
    checked against the file's length; an overflow page serves one value (in a sound database no two share one:
    a value whose chain meets a page already read, or ends early, is left out), and the values read together
    stop at the file's size (items on hash pages that overlap would otherwise copy one page thousands of times):
    a hostile file costs at most its own size."""
    if len(data) < 512:
        return []
    for order in "<>":
        magic, _version, pagesize = struct.unpack_from(order + "III", data, 12)
        if magic == BDB_HASH_MAGIC:
            break
    else:
        return []
    if data[24] != 0 or data[25] != _P_HASHMETA or pagesize not in {512 << k for k in range(8)}:
        return []  # (byte 24: the encryption algorithm)
    pages = len(data) // pagesize
    last = min(struct.unpack_from(order + "I", data, 32)[0], pages - 1)
    u16, u32 = struct.Struct(order + "H"), struct.Struct(order + "I")
    out: list[bytes] = []
    seen: set[int] = set()  # (the overflow pages read)
    budget = len(data)
    for number in range(1, last + 1):
        page = number * pagesize
        if data[page + 25] not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        count = min(u16.unpack_from(data, page + 20)[0], (pagesize - _PAGE_HEADER) // 2)
        index = [u16.unpack_from(data, page + _PAGE_HEADER + 2 * k)[0] for k in range(count)]
        for k in range(1, count, 2):  # (keys and values alternate: the values)
            at = index[k]
            if not _PAGE_HEADER <= at < pagesize:
                continue
            if data[page + at] == _H_KEYDATA:  # its bytes end where the item before it begins (items are
                end = index[k - 1] if at < index[k - 1] <= pagesize else pagesize  # laid from the page's end)
                if end - at - 1 > budget:
                    return out
                budget -= end - at - 1
                out.append(data[page + at + 1:page + end])
            elif data[page + at] == _H_OFFPAGE and at + 12 <= pagesize:
                first, length = u32.unpack_from(data, page + at + 4)[0], u32.unpack_from(data, page + at + 8)[0]
                if length > budget:
                    return out
                parts: list[bytes] = []
                got, chain = 0, first
                while 0 < chain < pages and chain not in seen and got < length:
                    seen.add(chain)
                    start = chain * pagesize
                    if data[start + 25] != _P_OVERFLOW:
                        break
                    size = min(u16.unpack_from(data, start + 22)[0], pagesize - _PAGE_HEADER, length - got)
                    parts.append(data[start + _PAGE_HEADER:start + _PAGE_HEADER + size])
                    got += size
                    chain = u32.unpack_from(data, start + 16)[0]
                if got == length:
                    budget -= length
                    out.append(b"".join(parts))
    return out


def purl(ident: dict[str, Any], distro: dict[str, str]) -> str:
    """An installed package's URL as syft writes it: pkg:deb/debian/libc6@2.36-9?arch=amd64&upstream=glibc&
    distro=debian-12, pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&upstream=bash-5.2.26-3.fc40.src.rpm&
    distro=fedora-40 (the namespace and distro from os-release, when the image has one)."""
    from packageurl import PackageURL

    from analyzer.load import packages

    if ident["type"] in LANGUAGES:
        return packages.purl(ident)  # (no distribution's: pkg:pypi/numpy@2.2.6, as a wheel's; pkg:npm/...)
    evr = packages.evr
    qualifiers = {k: v for k, v in (("arch", ident.get("arch")), ("epoch", ident.get("epoch")),
                                    ("upstream", ident.get("source")),
                                    ("distro", release_name(distro))) if v}  # fmt: skip
    return str(PackageURL(type=ident["type"], namespace=distro.get("id") or None, name=ident["name"],
                          version=evr(ident), qualifiers=qualifiers or None))


def section() -> dict[str, Any]:
    """The JSON report's `installed`: per image of this run, its distribution and its packages (none without a
    package database), each with the image's members it owns (their paths as the report names the artifacts)."""
    from analyzer.load.archives import INSTALLED, OWNERS

    owned: dict[tuple[str, int], list[str]] = {}
    for member, (image, index) in OWNERS.items():
        owned.setdefault((image, index), []).append(member)
    return {image: {"distro": found["distro"], "platform": found.get("platform"),
                    "packages": [{**p, "artifacts": sorted(owned.get((image, i), []))}
                                 for i, p in enumerate(found["packages"])]}
            for image, found in sorted(INSTALLED.items())}  # fmt: skip
