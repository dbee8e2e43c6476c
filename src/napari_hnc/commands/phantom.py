"""``napari-hnc phantom``: write synthetic head-and-neck PET/CT cases with known lesions."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write synthetic head-and-neck PET/CT phantoms (HECKTOR 2022 layout + lesion JSON)"
DESCRIPTION = (
    "Generate synthetic FDG PET/CT cases of the head and neck with a primary tumour and 0-5 lymph-node "
    "metastases, physiological uptake (brain, tonsils, salivary glands, vocal cords), a blurred, noisy PET "
    "on its own coarser grid and labels drawn from the lesion geometry. Case k is seed S+k (id "
    "PHANTOM-<S+k>), so any case can be remade alone and seed ranges never overlap. Files: "
    "OUT/imagesTr/<id>__CT.nii.gz, OUT/imagesTr/<id>__PT.nii.gz, OUT/labelsTr/<id>.nii.gz, "
    "OUT/lesions/<id>.json (class, centre in world RAS mm, volume in ml, SUVmax)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1, help="number of cases (default 1; 0 with --report: report only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first case (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--preset", choices=("default", "small", "wholebody", "wholebody-small"), default="default",
                        help="default: CT 0.98x0.98x3 mm, PET 4x4x3 mm; small: CT 2x2x3 mm, for tests; wholebody: "
                             "head to mid-thigh, CT 512x512x600 of 0.98x0.98x2 mm with torso organs; "
                             "wholebody-small: the same on 4 mm voxels")
    parser.add_argument("--report", action="store_true",
                        help="print lesion volume and SUVmax distributions beside the seed-004 cohort and write "
                             "them to OUT/report/ (CSV, text, PNG)")
    parser.add_argument("--no-misregistration", action="store_true", help="no random PET/CT offset")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.n < 0 or args.seed < 0:
        raise UsageError(f"--n and --seed must be >= 0 (got --n {args.n} --seed {args.seed})")
    if args.n == 0 and not args.report:
        raise UsageError("--n 0 writes nothing; give --n >= 1, or add --report to report on OUT")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")

    from ..phantom import format_report, lesion_table, read_lesion_files, save_report, write_cohort
    from ..progress import tqdm_progress

    if args.n:
        write_cohort(args.out, args.n, args.seed, args.preset, misregistration=not args.no_misregistration,
                     progress=tqdm_progress(unit="case"))
        last = args.seed + args.n - 1
        print(f"wrote {args.n} case(s) PHANTOM-{args.seed:04d}..PHANTOM-{last:04d} ({args.preset}) to {args.out}")
    if args.report:
        records = read_lesion_files(args.out)
        table = lesion_table(records)
        print(format_report(table, len(records)))
        paths = save_report(table, len(records), args.out / "report")
        print(f"report files: {', '.join(str(p) for p in paths.values())}")
    return 0
