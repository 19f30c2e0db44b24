"""Input sources: what the user names (files, directories, containers of artifacts) as the files to analyze.

A container (tar, zip/wheel/jar, .deb, .rpm, .apk, .a, an OCI layout or `docker save` image) named on the
command line or found in a directory becomes its members, named `outer!inner`, unpacked with bounds into a
private temporary directory that lives as long as the scan (`unpacking`); see analyzer/load/archives.py.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from analyzer.errors import AnalyzerError

if TYPE_CHECKING:
    from analyzer.load.archives import Limits


def walk(root: str, images: bool = False, layouts: set[str] | None = None) -> list[str]:
    """Every regular file below `root` (symlinks not followed), sorted by path; binaries or not. `images`: an
    OCI image layout directory below it (`oci-layout` and `index.json`) is listed itself, in its place, and
    not walked into (its blobs are an image's parts, not files of the tree), and added to `layouts`.

    Iterative, so a tree of any depth is walked (no recursion limit). Sniffing is left to the caller, so that
    it can be spread over worker processes.
    """
    found: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda d: d.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    if images and os.path.isfile(os.path.join(entry.path, "oci-layout")) and \
                            os.path.isfile(os.path.join(entry.path, "index.json")):
                        found.append(entry.path)
                        if layouts is not None:
                            layouts.add(entry.path)
                    else:
                        subfolders.append(entry.path)
                elif entry.is_file():
                    found.append(entry.path)
            except OSError:
                continue
        stack.extend(reversed(subfolders))
    return sorted(found, key=_walk_order)


def _walk_order(path: str) -> list[str]:
    """A depth-first, name-ordered walk's order: compare paths component by component."""
    return path.split(os.sep)


def expand(paths: list[str], unpacker: object | None = None, request: object | None = None) -> list[tuple[str, bool]]:
    """(file, named explicitly) for every path: iter_tasks as a list."""
    return list(iter_tasks(paths, unpacker, request))


def iter_tasks(paths: list[str], unpacker: object | None = None,
               request: object | None = None) -> Iterator[tuple[str, bool]]:  # fmt: skip
    """(file, named explicitly) for every path; directories are walked (binaries or not). With an unpacker,
    containers become their members (found, not explicit), each given as soon as it is written; a container
    named explicitly that cannot be unpacked is an AnalyzerError, one found in a directory is recorded as that
    container's error."""
    from analyzer.load import archives, remote

    for p in paths:
        if remote.is_url(p) and unpacker is not None and (outer := _url_member_of(p)) is not None:
            if not _url_container(unpacker, outer, explicit=True):
                raise AnalyzerError(f"{outer} is not a container (a package, archive or image) to name a member of",
                                    p)
            yield from _named_member(unpacker, outer, p, request)
        elif remote.is_url(p):  # a file or a prefix: its files, fetched by whichever process analyses them
            files = remote.expand(p)
            for f in files:
                if unpacker is not None and _url_container(unpacker, f, explicit=files == [p]):
                    yield from _members(unpacker, f, explicit=files == [p], request=request)
                else:
                    yield (f, files == [p])
        elif unpacker is not None and (kind := archives.kind_of(p)) is not None:
            if kind in ("appimage", "appimage1") and not p.lower().endswith(".appimage"):
                yield (p, True)  # (a renamed AppImage: its payload is read with its runtime, pipeline._payload_here)
            else:
                yield from _members(unpacker, p, explicit=True, request=request)
        elif unpacker is not None and (outer := _container_prefix(p)) is not None:
            yield from _named_member(unpacker, outer, p, request)
        elif os.path.isdir(p):
            layouts: set[str] = set()
            files = walk(p, images=unpacker is not None, layouts=layouts)
            _directory_packages(p, files)
            for f in files:
                if unpacker is not None and archives.kind_of(f, by_name=f not in layouts) is not None:
                    yield from _members(unpacker, f, explicit=False, request=request)
                else:
                    yield (f, False)
        else:
            yield (p, True)


def _directory_packages(root: str, files: list[str]) -> None:
    """The packages installed in a directory tree scanned (a root filesystem, a virtual environment), as an
    image's: its distribution and packages for the reports, and the owner of each file its packages list."""
    from analyzer.errors import path_text
    from analyzer.load import archives, installed

    found, listed = installed.read_directory(root, files)
    if found is not None:
        name = path_text(root)
        archives.INSTALLED[name] = {**found, "platform": None, "source": "directory"}
        archives.DIRECTORY_OWNERS.update((path_text(f), (name, f, c)) for f, c in listed.items())


def named_container(path: str) -> str | None:
    """The container on disk that a name `outer!inner` (as reports spell members, nested ones too) points into:
    the shortest prefix ending before a `!` that is a file or an image layout, when `path` itself is no file.
    AnalyzerError when that prefix is a file but no container. None for every other name."""
    from analyzer.load import archives

    if os.environ.get(archives.UNPACK_ENV):
        return None  # (inside an unpacking, `outer!inner` names the members it wrote: image_sysroot's programs)
    return _container_prefix(path)


def _container_prefix(path: str) -> str | None:
    from analyzer.load import archives

    if archives.SEP not in path or os.path.lexists(path):
        return None
    for outer in _prefixes(path):
        if os.path.isdir(outer) and archives.kind_of(outer) is not None:
            return outer
        if os.path.isfile(outer):
            if archives.kind_of(outer) is None:
                from analyzer import load

                if load.bundled_member(path) is not None:
                    return None  # a binary a PyInstaller program carries: read as a file (load.read_file)
                if load.bundled_member(outer + archives.SEP, any_name=True) is not None:
                    raise AnalyzerError(f"no binary of that name in {outer}", path)
                raise AnalyzerError(f"{outer} is not a container (a package, archive or image) to name a member of",
                                    path)
            return outer
    return None


def _prefixes(name: str) -> Iterator[str]:
    """What a name `a!b!c` could name a container by, shortest first: `a`, `a!b` (a file's own name may hold a `!`)."""
    from analyzer.load import archives

    at = name.find(archives.SEP)
    while at > 0:
        yield name[:at]
        at = name.find(archives.SEP, at + 1)


def _named_member(unpacker: object, outer: str, path: str, request: object | None) -> Iterator[tuple[str, bool]]:
    """A member named on the command line: the container unpacked as when it is named itself, and only that
    member given (as a file named explicitly: its errors are the run's), or a nested container's members."""
    import posixpath

    from analyzer.load import archives

    given, found = path, False
    # spelled as the reports spell members: `./bin/ls`, `/usr/bin/ls` (as tar -t lists, as the image's root) are
    # `bin/ls`, `usr/bin/ls`
    path = archives.SEP.join([outer] + [posixpath.normpath(seg.lstrip("/")) if seg.strip("/") else seg
                                        for seg in path[len(outer) + 1:].split(archives.SEP)])
    for name, _ in _members(unpacker, outer, explicit=True, request=request):
        if name == path:
            found = True
            yield (name, not _holds_members(name))  # a nested container: its members follow
        elif name.startswith(path + archives.SEP):
            found = True
            yield (name, False)
        elif path.startswith(name + archives.SEP) and not found:
            from analyzer import load

            if load.bundled_member(path) is not None:  # a binary a PyInstaller program in the container carries
                found = True
                yield (path, True)
    if not found:
        raise AnalyzerError(f"no binary or container of that name in {outer}", given)


def _url_member_of(url: str) -> str | None:
    """For a member named by URL (`https://host/dist/app.deb!usr/bin/app`): the container's URL, the shortest
    prefix before a `!` named like a container; None for a URL that names no member."""
    from analyzer.load import archives

    return next((outer for outer in _prefixes(url) if outer.lower().endswith(archives.EXTENSIONS)), None)


def _holds_members(name: str) -> bool:
    """Whether a container's member is a container itself: by its bytes once unpacked, or, for a member known
    only by its digest (an unchanged container the result cache answers), by the kind recorded for it."""
    from analyzer.load import archives

    found = archives.resolve(name)
    if found is not None:
        return archives.kind_of(found) is not None
    known = archives.member_digest(name)
    return known is not None and not known[1]


def _url_container(unpacker: object, url: str, explicit: bool) -> bool:
    """Whether a URL names a container (its name says so, and its bytes, fetched here to be unpacked, agree).
    A container URL that cannot be fetched is an AnalyzerError when named, else that file's error."""
    from analyzer import load
    from analyzer.load import archives

    if not url.lower().endswith(archives.EXTENSIONS):
        return False
    try:
        return archives.kind_of(load._member(url)) is not None
    except AnalyzerError as e:
        if explicit:
            raise
        unpacker.error(url, e.problem)  # type: ignore[attr-defined]
        return False


def _members(unpacker: object, path: str, explicit: bool,
             request: object | None = None) -> Iterator[tuple[str, bool]]:  # fmt: skip
    """The members of a container as tasks. One named explicitly streams them (they are analysed while the rest
    is unpacked; a failure part way is the run's AnalyzerError); one found in a walk is read whole first, so
    that when it fails its error stands in place of all its members."""
    from analyzer import load
    from analyzer.load import archives
    from analyzer.load.archives import Unpacker, UnpackError

    assert isinstance(unpacker, Unpacker)
    # an AppImage is a program too (its runtime, what users start): given before its squashfs's members
    runtime = [(path, explicit)] if archives.kind_of(load._member(path)) in ("appimage", "appimage1") else []
    known = _cached_members(unpacker, path, request)
    from analyzer import cache as result_cache

    unpacker.keep_digests = request is not None and result_cache.current() is not None
    if known is not None:
        yield from runtime + known
        return
    errors_before = unpacker.errors
    members: list[str] = []
    stream = unpacker.iter_expand(load._member(path), name=path)  # a URL: its local copy, named by the URL
    try:
        if explicit:
            yield from runtime
            for m in stream:
                members.append(m)
                yield (m, False)
        else:
            members = list(stream)
    except UnpackError as e:
        if explicit:
            raise AnalyzerError(str(e), path) from None
        unpacker.error(path, str(e))
        yield (path, False)
        return
    if errors_before == unpacker.errors:  # a container with a damaged member is unpacked every time
        _remember_members(unpacker, path, members, request)
    if not explicit:
        yield from runtime
        yield from ((m, False) for m in members)


def _stream_hash(path: str) -> tuple[str, None]:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), None


def _container_key(unpacker: object, path: str, request: object) -> tuple[object, str] | None:
    """The result cache and the key of a container's member list (its content, name, binlens and the limits
    and the platform and image chosen), or None without a cache."""
    import hashlib

    from analyzer import cache as result_cache

    store = result_cache.current()
    if store is None or request is None or not os.path.isfile(path):
        return None
    digest, _ = result_cache.file_digest(store, path, _stream_hash)  # unchanged since hashed: not read again
    chosen = "\0".join(str(getattr(unpacker, k, "")) for k in ("limits", "platform", "image"))
    material = f"container\0{digest}\0{path}\0{result_cache.code_fingerprint()}\0{chosen}"
    return store, hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()


def _cached_members(unpacker: object, path: str, request: object | None) -> list[tuple[str, bool]] | None:
    """An unchanged container whose every binary member has its facts and findings in the result cache: its
    members, known by their digests, without unpacking it again."""
    from analyzer import cache as result_cache
    from analyzer.load import archives

    found = _container_key(unpacker, path, request)
    if found is None:
        return None
    store, key = found
    manifest = store.get(key)  # type: ignore[attr-defined]
    if not manifest:
        return None
    fkey = result_cache.facts_key(request)
    names = [row[0] for row in manifest if row[2]]
    keys = [store.key(row[1], row[0], fkey, row[3]) for row in manifest if row[2]]  # type: ignore[attr-defined]
    findings = [result_cache.findings_key(f"{k}:0", request) for k in keys]
    # answered here, as _results would in a worker, when the report is JSON text its rows hold
    answer = getattr(request, "encode", False) and not any(p.name in result_cache.READS_OTHER_FILES
                                                           for p in getattr(request, "providers", ()))
    if answer:
        rows = store.get_many(findings)  # type: ignore[attr-defined]
        if len(rows) < len(findings) or store.missing(keys):  # type: ignore[attr-defined]
            return None
    elif store.missing(keys + findings):  # type: ignore[attr-defined]
        return None
    installed = store.get(key + ":installed") or []  # type: ignore[attr-defined]
    if not installed and any(len(row) > 3 and row[3] for row in manifest):
        return None  # (an image's members, without what the image holds: unpacked again, so the reports have it)
    ready = {}
    if answer:
        for name, fk in zip(names, findings, strict=True):
            row = rows.get(fk)
            if row is not None and len(row) == 3 and row[1] is not None and row[2][2] == 1:
                ready[name] = row
    root: str = unpacker.root  # type: ignore[attr-defined]
    # (its table is for the workers: none analyses a member whose row is ready, so then it is kept here only)
    archives.known_members(root, path, manifest, write=len(ready) < len(names))
    archives.PACKAGES.update((row[0], row[4]) for row in manifest if len(row) > 4 and row[4])
    archives.OWNERS.update((row[0], tuple(row[5])) for row in manifest if len(row) > 5 and row[5])
    for images in installed:
        archives.INSTALLED.update(images)
    result_cache.READY.update(ready)
    return [(m[0], False) for m in manifest]


def _remember_members(unpacker: object, path: str, members: list[str], request: object | None) -> None:
    from analyzer import load
    from analyzer.load import archives

    found = _container_key(unpacker, path, request)
    if found is None:
        return
    store, key = found
    digests = getattr(unpacker, "digests", {})
    waiting: set[str] = getattr(unpacker, "pending", set())
    manifest = []
    for m in members:
        if m not in digests and m not in waiting:
            return  # a member not written by this unpacker: keep no list
        # (a package inside, and the installed package owning an image's member: known again on a cache hit)
        manifest.append([m, digests.get(m), load.sniff_file(m) or "", archives.member_layer(m),
                         archives.PACKAGES.get(m), archives.OWNERS.get(m)])
    images = {n: archives.INSTALLED[n] for n in archives.INSTALLED if n == path or n.startswith(path + archives.SEP)}
    if images:
        store.put(key + ":installed", [images])  # type: ignore[attr-defined]
    if any(m in waiting for m in members):  # inflated by the workers: their digests are known when the scan ends
        unpacker.manifests.append((store, key, manifest))  # type: ignore[attr-defined]
    else:
        store.put(key, manifest)  # type: ignore[attr-defined]


def _remember_inflated(unpacker: object) -> None:
    """The member lists kept back until the workers inflated their zip members: each written with the digests
    taken as they were inflated (none when a member was not: the scan stopped, or its data was corrupt)."""
    from analyzer.load import archives

    for store, key, manifest in getattr(unpacker, "manifests", ()):
        for row in manifest:
            if row[1] is None:
                row[1] = archives.written_digest(row[0])
        if all(row[1] for row in manifest):
            store.put(key, manifest)


@contextmanager
def environ_set(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` in this process's environment (and so in the worker processes it starts), restored
    afterwards."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextmanager
def unpacking(paths: list[str], limits: Limits | None = None, platform: str = "",
              request: object | None = None, image: str = "") -> Iterator[Iterator[tuple[str, bool]]]:
    """The tasks of `paths` with containers unpacked into a private temporary directory, which the worker
    processes find through the environment and which is removed afterwards."""
    from analyzer.load import archives, remote

    for found in (archives.PACKAGES, archives.INSTALLED, archives.OWNERS, archives.DIRECTORY_OWNERS,
                  archives.DIRECTORY_VERDICTS, archives.CONTAINER_OWNERS):
        found.clear()  # (this run's: the reports read them after the unpacking is gone)
    if not any(remote.is_url(p) or archives.kind_of(p) is not None or os.path.isdir(p) or named_container(p)
               for p in paths):
        yield iter_tasks(paths)
        return
    root = tempfile.mkdtemp(prefix="binlens-unpack-")
    unpacker = archives.Unpacker(root, limits, platform, image)
    try:
        with environ_set(archives.UNPACK_ENV, root):
            yield iter_tasks(paths, unpacker, request)
            _remember_inflated(unpacker)
    finally:
        unpacker.close_packs()
        archives.remove_tree(root)


IMAGE_ENV: dict[str, dict[str, str]] = {}  # an image sysroot's final filesystem → the environment its config sets


def image_env(fs: str) -> dict[str, str]:
    """The environment the image written to `fs` (image_sysroot) sets for its programs ({} for other containers)."""
    return IMAGE_ENV.get(fs, {})


@contextmanager
def image_sysroot(containers: str | list[str], programs: list[str], limits: Limits | None = None,
                  platform: str = "", image: str = "") -> Iterator[tuple[str, list[str]]]:
    """A container image (or tarball, or .deb) as a sysroot — or several, applied in the order given as one
    filesystem (a set of .debs installed together): the final filesystem written to a private temporary
    directory, and the names of the programs to resolve in it, `container!usr/bin/app` (the container that
    wrote the file last) — those named (paths inside the image), or every ELF program with an interpreter and
    every plugin a runtime of the image loads (_is_plugin: a Python extension module, a Node.js addon).
    Removed afterwards. `limits`: the containers' (archives.Limits; None: the defaults); `platform`: the one
    chosen in a multi-platform image (--platform); `image`: the one chosen in a file of several (--image)."""
    from analyzer.load import archives

    containers = [containers] if isinstance(containers, str) else containers
    root = tempfile.mkdtemp(prefix="binlens-sysroot-")
    try:
        with environ_set(archives.UNPACK_ENV, root):
            fs = os.path.join(root, "fs")
            owner = _materialize(containers, fs, root, limits, platform, image)
            if programs:
                rels = [p.strip("/") for p in programs]
            else:
                rels = [os.path.relpath(f, fs) for f in tree_programs(fs)]
            names = []
            for rel in rels:
                host = archives.image_directory(fs, os.path.dirname(rel))
                target = os.path.join(host, os.path.basename(rel)) if host else None
                if target is None or not os.path.isfile(target):
                    raise AnalyzerError(f"no such file in the image: /{rel}", ",".join(containers))
                name = f"{owner.get(target, containers[-1])}{archives.SEP}{rel}"
                os.symlink(target, archives.member_file(root, name))
                names.append(name)
            yield fs, names
    finally:
        IMAGE_ENV.pop(os.path.join(root, "fs"), None)
        archives.remove_tree(root)


def tree_programs(tree: str) -> list[str]:
    """The files of a root filesystem directory (a chroot, debootstrap's, an unpacked image) that `scan
    --check-loading` resolves there, as image_sysroot picks them in an image: every ELF program with an
    interpreter and every plugin a runtime of it loads; their paths as given (below `tree`)."""
    from analyzer import load

    return [f for f in walk(tree) if load.sniff_file(f) == "ELF" and (_has_interpreter(f) or _is_plugin(f))]


def _materialize(containers: list[str], fs: str, root: str, limits: Limits | None = None,
                 platform: str = "", image: str = "") -> dict[str, str]:
    """The containers' final filesystems written into `fs` in order; for several, which container wrote each file
    last (file -> container)."""
    from analyzer.load import archives

    owner: dict[str, str] = {}
    seen: dict[str, tuple[int, int, int]] = {}
    for container in containers:
        try:
            unpacker = archives.Unpacker(root, limits, platform, image)
            unpacker.materialize(container, fs)
        except archives.UnpackError as e:
            raise AnalyzerError(str(e), container) from None
        if unpacker.image_env:  # (of several containers, the last image's)
            IMAGE_ENV[fs] = unpacker.image_env
        if len(containers) > 1:
            for f in walk(fs):
                st = os.lstat(f)
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                if seen.get(f) != stamp:
                    seen[f], owner[f] = stamp, container
    return owner


def _is_plugin(path: str) -> bool:
    """Whether an image's ELF file is what a runtime loads as a plugin, which fails there as a program would: a
    Python extension module (a .so in a site-packages, dist-packages or lib-dynload directory, exporting
    PyInit_NAME) or a Node.js addon (a .node file, exporting napi_register_module_v1 or node_register_module_vN,
    or registering itself with napi_module_register or node_module_register).
    By name first: the many other libraries of an image are not read for it."""
    from analyzer.load.elf import ELFFile

    base = os.path.basename(path)
    python = ".so" in base and any(d in path for d in ("-packages/", "/lib-dynload/"))
    if not (python or base.endswith(".node")):
        return False
    try:
        import mmap

        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            elf = ELFFile(data, path)
            if python:
                marks: tuple[bytes, ...] = (b"PyInit_",)
            else:
                from analyzer.facts.linkage import NODE_ADDON_MARKS as marks
            found = any(elf.dynstr_has(m) for m in marks)
            del elf
            return found
    except Exception:  # noqa: BLE001 - a file that is not a readable ELF is no plugin to resolve
        return False


def _has_interpreter(path: str) -> bool:
    from analyzer.load.elf import ELFFile

    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 16)
        return any(seg.p_type == 3 for seg in ELFFile(data, path).segments)  # PT_INTERP
    except Exception:  # noqa: BLE001 - a file that is not a readable ELF is no program to resolve
        return False
