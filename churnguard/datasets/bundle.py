"""Rebuild the bundled data files in ``churnguard/datasets/data/`` from the original downloads.

Run once, when a source changes (the output is committed)::

    python -m churnguard.datasets.bundle /path/to/shared/data

``/path/to/shared/data`` holds the folders ``telco_ibm/``, ``telco_ibm_cltv/``, ``cdnow/`` and
``grocery_elog/`` described in ``docs/datasets.md``.  Each bundled file is a gzipped UTF-8 CSV
with a header line, which the ingestion reader reads as it is; the loaders in
:mod:`churnguard.datasets.real` put it through the shipped mapping files.  The conversions keep
every value as the text it was in the source (no parsing, no rounding):

``telco_customer_churn.csv.gz``
    the IBM Telco CSV, byte for byte, gzipped.
``telco_customer_churn_cltv.csv.gz``
    the one sheet of the IBM extended xlsx, exported as text cells (the same text the ingestion
    reader's Excel path produces), so loading does not need openpyxl's slow xlsx parse.
``cdnow_master.csv.gz``, ``cdnow_sample.csv.gz``
    the whitespace-separated CDNOW files, rewritten as CSV (``customer_id, date, number_of_cds,
    dollar_value``; the sample also has ``sample_id``, its 1/10-sample customer number).
``grocery_elog.csv.gz``
    the BTYDplus grocery event log CSV, byte for byte, gzipped.

The gzip streams carry no file name or time stamp, so a rebuild from the same sources gives
byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"

#: bundled file -> (source folder, source file) of the original download.
SOURCES: dict[str, tuple[str, str]] = {
    "telco_customer_churn.csv.gz": ("telco_ibm", "WA_Fn-UseC_-Telco-Customer-Churn.csv"),
    "telco_customer_churn_cltv.csv.gz": ("telco_ibm_cltv", "Telco_customer_churn.xlsx"),
    "cdnow_master.csv.gz": ("cdnow", "CDNOW_master.txt.gz"),
    "cdnow_sample.csv.gz": ("cdnow", "CDNOW_sample.txt"),
    "grocery_elog.csv.gz": ("grocery_elog", "groceryElog.csv"),
}


def _write_gzip(path: Path, data: bytes) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    path.write_bytes(buf.getvalue())


def _frame_csv(frame: object) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")  # type: ignore[attr-defined]


def _read_whitespace(path: Path, names: list[str] | None) -> object:
    import pandas as pd

    return pd.read_csv(path, sep=r"\s+", dtype=str, header=None if names else "infer", names=names)


def build(source_dir: Path, out_dir: Path = DATA_DIR) -> list[Path]:
    """Write every bundled file from the originals in ``source_dir``; return the paths written.

    Parameters
    ----------
    source_dir : the folder holding ``telco_ibm/``, ``telco_ibm_cltv/``, ``cdnow/`` and ``grocery_elog/``.
    out_dir : where to write (default: the package's ``datasets/data/``).
    """
    import pandas as pd

    def src(name: str) -> Path:
        folder, file = SOURCES[name]
        path = source_dir / folder / file
        if not path.exists():
            raise FileNotFoundError(f"{path}: expected the original download named in docs/datasets.md.")
        return path

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("telco_customer_churn.csv.gz", "grocery_elog.csv.gz"):
        _write_gzip(out_dir / name, src(name).read_bytes())
        written.append(out_dir / name)

    name = "telco_customer_churn_cltv.csv.gz"
    # dtype=str: the same cell text as the ingestion reader's Excel path (readers._read_excel).
    sheet = pd.read_excel(src(name), sheet_name=0, dtype=str, engine="openpyxl")
    sheet.columns = [str(c).strip() for c in sheet.columns]
    _write_gzip(out_dir / name, _frame_csv(sheet))
    written.append(out_dir / name)

    name = "cdnow_master.csv.gz"
    _write_gzip(out_dir / name, _frame_csv(_read_whitespace(src(name), None)))
    written.append(out_dir / name)

    name = "cdnow_sample.csv.gz"
    sample = _read_whitespace(src(name), ["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"])
    _write_gzip(out_dir / name, _frame_csv(sample))
    written.append(out_dir / name)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m churnguard.datasets.bundle", description=__doc__.split("\n")[0])
    parser.add_argument("source_dir", type=Path, help="folder with telco_ibm/, telco_ibm_cltv/, cdnow/, grocery_elog/")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: the package's data/)")
    args = parser.parse_args(argv)
    for path in build(args.source_dir, args.out):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":  # pragma: no cover
    main()
