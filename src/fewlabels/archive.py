"""The archive: what a finished run leaves so that figures, tables and the PDF can be rebuilt
without training (``results/archive/``, committed to the repository).

``create`` copies ``results/metrics.csv``, ``results/benchmarks.csv`` and the run files the
figures read into the archive (checkpoints with half-precision weights, to keep it small), with ``config.yaml`` (the run's configuration plus
``archive: true``) and ``MANIFEST.tsv`` (path, bytes, SHA-256 and code fingerprint of every file,
and a closing note that says whether the archive mixes versions of the code).
``update`` merges re-runs of some cells into an archive (``scripts/archive_update.sh``): their rows replace
the archived rows of the same runs in metrics.csv and benchmarks.csv, their run files replace the
archived ones, and the manifest says that the archive now mixes versions of the code.
``restore`` copies one archived file back to ``results/`` after checking its hash, so a
truncated file or a Git LFS pointer is an error, not a silently wrong figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from .files import atomic_write, file_sha256

MANIFEST = "MANIFEST.tsv"
CONFIG = "config.yaml"
# Keys whose difference means the archive cannot stand in for this configuration's runs.
GRID_KEYS = ("grid", "seeds")


class ArchiveError(RuntimeError):
    pass


def relative(path: Path) -> Path:
    """A file's path inside results/ (archived files keep their place: results/X -> archive/X)."""
    parts = Path(path).parts
    if "results" not in parts:
        raise ArchiveError(f"{path}: only files under results/ can be archived")
    rel = Path(*parts[parts.index("results") + 1:])
    if not rel.parts or rel.parts[0] == "archive":
        raise ArchiveError(f"{path}: not a results file that can be archived")
    return rel


def _half(obj):
    import torch

    if isinstance(obj, torch.Tensor) and obj.is_floating_point():
        return obj.half()
    if isinstance(obj, dict):
        return type(obj)((k, _half(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_half(v) for v in obj)
    return obj


def save_half(src: Path, dest: Path) -> None:
    """Copy a checkpoint with its float tensors in half precision: half the size, and
    ``load_state_dict`` casts them back to the module's float32. Figures drawn from it differ
    from the original run's by weight rounding only; every number in the paper comes from
    metrics.csv, which is archived exactly."""
    import torch

    torch.save(_half(torch.load(src, map_location="cpu", weights_only=False)), dest)


def code_of(f: Path) -> str:
    """The code fingerprint(s) a results file comes from: a run file's from the metrics.json beside it,
    metrics.csv's from its code_sha256 column (comma-separated when it mixes several); '-' if unknown."""
    f = Path(f)
    try:
        if f.name == "metrics.csv":
            import pandas as pd
            col = pd.read_csv(f, usecols=lambda c: c == "code_sha256")
            codes = sorted(set(col["code_sha256"].dropna().astype(str))) if "code_sha256" in col else []
            return ",".join(codes) or "-"
        if (f.parent / "metrics.json").exists():
            return json.loads((f.parent / "metrics.json").read_text())["env"].get("code_sha256") or "-"
    except (OSError, ValueError, KeyError):
        pass
    return "-"


def create(files, archive: Path, config: dict, codes: dict[str, str] | None = None) -> list[str]:
    """(Re)make ``archive`` from ``files`` (paths under results/); returns the manifest lines.
    ``codes``: the code fingerprint of files whose run directory is gone (an archived copy), by path."""
    archive = Path(archive)
    tmp = archive.with_name(archive.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lines = []
    for f in sorted(set(map(Path, files))):
        rel = relative(f)
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.suffix == ".pt":
            save_half(f, dest)
        else:
            shutil.copyfile(f, dest)
        code = code_of(f)
        if code == "-" and codes:
            code = codes.get(rel.as_posix(), "-")
        lines.append(f"{rel.as_posix()}\t{dest.stat().st_size}\t{file_sha256(dest)}\t{code}")
    tmp.mkdir(parents=True, exist_ok=True)
    codes = sorted({c for line in lines for c in line.split("\t")[3].split(",") if c != "-"})
    note = f"# code fingerprints (fewlabels.provenance): {', '.join(codes) or 'not recorded'}"
    if len(codes) > 1:
        note += f" -- this archive MIXES {len(codes)} versions of the code"
    (tmp / MANIFEST).write_text("path\tbytes\tsha256\tcode_sha256\n" + "\n".join(lines) + "\n" + note + "\n")
    where = Path(archive).as_posix()
    header = (f"# The configuration {where}/ was made with. Rebuild every figure, table and the\n"
              "# PDF from the archive, without training:\n"
              f"#   snakemake --cores all --configfile {where}/config.yaml\n")
    (tmp / CONFIG).write_text(header + yaml.safe_dump({**config, "archive": True, "archive_dir": where},
                                                      sort_keys=False))
    shutil.rmtree(archive, ignore_errors=True)
    tmp.rename(archive)
    return lines


def manifest(archive: Path) -> dict[str, tuple[int, str]]:
    path = Path(archive) / MANIFEST
    if not path.exists():
        raise ArchiveError(f"{path} is missing: make the archive with `snakemake archive --cores all "
                           "--configfile <preset>` after a finished run")
    # manifests before the code column had three columns; the '#' line is a note
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip() and line[0] != "#"]
    return {r[0]: (int(r[1]), r[2]) for r in rows}


# The columns that name a run in metrics.csv and benchmarks.csv
RUN_KEY = ["stage", "task", "method", "labels", "seed"]


def merge_rows(old, new):
    """``old`` with every run that ``new`` has replaced by ``new``'s row, and ``new``'s other runs added."""
    import pandas as pd

    for df in (old, new):
        missing = [k for k in RUN_KEY if k not in df.columns]
        if missing:
            raise ArchiveError(f"cannot merge: a table lacks the run columns {missing}")

    def key(df):
        return df[RUN_KEY].astype(str).agg("/".join, axis=1)

    return pd.concat([old[~key(old).isin(set(key(new)))], new], ignore_index=True)


def update(archive: Path, metrics: Path, benchmarks: Path, files, config: dict) -> list[str]:
    """Merge re-runs of some cells into ``archive``: their rows of ``metrics`` and ``benchmarks`` replace
    the archived rows of the same runs (other new runs are added), ``files`` (their run files, paths under
    results/) replace archived files of the same path, and the configuration becomes ``config``. What
    re-running only the cells a change touches needs; the manifest then notes the mixed code versions."""
    import tempfile

    import pandas as pd

    archive = Path(archive)
    held = manifest(archive)
    codes = {}
    for line in (archive / MANIFEST).read_text().splitlines()[1:]:
        cols = line.split("\t")
        if line and line[0] != "#" and len(cols) > 3:
            codes[cols[0]] = cols[3]
    new_files = {relative(f).as_posix(): Path(f) for f in files}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        out = []
        for name, new in (("metrics.csv", metrics), ("benchmarks.csv", benchmarks)):
            old = pd.read_csv(archive / name, dtype={"labels": str})
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            merge_rows(old, pd.read_csv(new, dtype={"labels": str})).to_csv(dest, index=False)
            out.append(dest)
        for rel in held:
            if rel in ("metrics.csv", "benchmarks.csv") or rel in new_files:
                continue
            restore(archive, rel, root / rel)  # checks its hash on the way
            out.append(root / rel)
        return create(out + list(new_files.values()), archive, config, codes)


def restore(archive: Path, rel: str, out: Path) -> None:
    """Copy ``archive/rel`` to ``out`` if its size and SHA-256 match the manifest."""
    src = Path(archive) / rel
    entry = manifest(archive).get(rel)
    if entry is None:
        raise ArchiveError(f"{rel} is not in {archive}/{MANIFEST}; the archive was made with another "
                           f"configuration (use --configfile {archive}/config.yaml)")
    size, sha = entry
    got = file_sha256(src)
    if src.stat().st_size != size or got != sha:
        raise ArchiveError(f"{src}: {src.stat().st_size} bytes, SHA-256 {got[:12]}..., but the manifest says "
                           f"{size} bytes, {sha[:12]}...; the archive is damaged (a Git LFS pointer or a "
                           "partial checkout?). Re-fetch it, or retrain without archive mode.")
    atomic_write(Path(out), lambda tmp: shutil.copyfile(src, tmp))


def check_config(config: dict, archive: Path) -> None:
    """In archive mode, the grid and seeds must be the archive's: other runs cannot be restored."""
    path = Path(archive) / CONFIG
    if not path.exists():
        raise ArchiveError(f"archive mode, but {path} is missing: there is no archive to rebuild from. "
                           "Make one with `snakemake archive --cores all --configfile <preset>`.")
    made = yaml.safe_load(path.read_text())
    for key in GRID_KEYS:
        if made.get(key) != config.get(key):
            raise ArchiveError(f"archive mode: config {key!r} is {config.get(key)!r} but {archive} was made with "
                               f"{made.get(key)!r}; run with --configfile {path}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.archive", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="(re)make the archive from a finished run's files")
    c.add_argument("--archive", required=True, type=Path)
    c.add_argument("--config", required=True, help="the run's configuration as JSON")
    c.add_argument("files", nargs="+", type=Path)
    u = sub.add_parser("update", help="merge re-runs of some cells (tables and run files) into the archive")
    u.add_argument("--archive", required=True, type=Path)
    u.add_argument("--config", required=True, type=Path, help="the configuration as JSON (results/config.json)")
    u.add_argument("--metrics", required=True, type=Path, help="metrics.csv of the re-runs")
    u.add_argument("--benchmarks", required=True, type=Path, help="benchmarks.csv of the re-runs")
    u.add_argument("files", nargs="*", type=Path, help="the re-runs' files that the archive holds for figures")
    r = sub.add_parser("restore", help="copy one archived file back, checking its hash")
    r.add_argument("--archive", required=True, type=Path)
    r.add_argument("--path", required=True, help="the file's path inside results/")
    r.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "create":
            lines = create(args.files, args.archive, json.loads(args.config))
            total = sum(int(line.split("\t")[1]) for line in lines)
            print(f"archived {len(lines)} files, {total / 1e6:.1f} MB, in {args.archive}", file=sys.stderr)
        elif args.cmd == "update":
            lines = update(args.archive, args.metrics, args.benchmarks, args.files,
                           json.loads(Path(args.config).read_text()))
            print(f"updated {args.archive}: {len(lines)} files", file=sys.stderr)
        else:
            restore(args.archive, args.path, args.out)
    except (ArchiveError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
