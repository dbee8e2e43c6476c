"""``napari-hnc phantom``: write synthetic head-and-neck PET/CT cases with known lesions."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_overwrite_argument, check_outputs, finished

HELP = "write synthetic head-and-neck PET/CT phantoms (HECKTOR 2022 layout + lesion JSON)"
DESCRIPTION = (
    "Generate synthetic FDG PET/CT cases of the head and neck with a primary tumour and 0-5 lymph-node "
    "metastases, physiological uptake (brain, tonsils, salivary glands, vocal cords), a blurred, noisy PET "
    "on its own coarser grid and labels drawn from the lesion geometry. Case k is seed S+k (id "
    "PHANTOM-<S+k>), so any case can be remade alone and seed ranges never overlap. Files: "
    "OUT/imagesTr/<id>__CT.nii.gz, OUT/imagesTr/<id>__PT.nii.gz, OUT/labelsTr/<id>.nii.gz, "
    "OUT/labelsTr/<id>_instances.nii.gz (lesion instances), OUT/lesions/<id>.json (class, centre in world RAS "
    "mm, volume in ml, SUVmax). A share of the cases (--hard-cases, 0.3) are hard: a chain of touching nodes, a "
    "node touching the primary, or a large necrotic nodal mass; --hard-cases 0 gives the cohorts of generator "
    "version 1, on which the bundled models were trained."
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
    parser.add_argument("--hard-cases", type=float, default=None, metavar="SHARE",
                        help="share of hard cases: touching nodes, a node on the primary, a 30-120 ml necrotic nodal "
                             "mass (default 0.3; 0: generator version 1, as the bundled models were trained on)")
    parser.add_argument("--touching", action="store_true",
                        help="every case has touching lesions (a node chain, or a node on the primary)")
    parser.add_argument("--scanner", choices=("default", "target"), default="default",
                        help="acquisition: default (PSF FWHM 5-7 mm, PET noise CV 0.08-0.14, CT noise 10-18 HU) or "
                             "target, another clinic (FWHM 8-9 mm, CV 0.16-0.28, CT noise 20-30 HU)")
    parser.add_argument("--delineation", choices=("extent", "pet41"), default="extent",
                        help="how the labels delineate a lesion: extent (all of it, default) or pet41, the metabolic "
                             "volume of the fixed-threshold MTV convention (voxels >= 41%% of the lesion's SUVmax)")
    add_overwrite_argument(parser, "existing case and report files in OUT")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.n < 0 or args.seed < 0:
        raise UsageError(f"--n and --seed must be >= 0 (got --n {args.n} --seed {args.seed})")
    if args.n == 0 and not args.report:
        raise UsageError("--n 0 writes nothing; give --n >= 1, or add --report to report on OUT")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    if args.touching and args.hard_cases is not None:
        raise UsageError("give --touching or --hard-cases, not both")
    if args.hard_cases is not None and not 0.0 <= args.hard_cases <= 1.0:
        raise UsageError(f"--hard-cases is a share between 0 and 1 (got {args.hard_cases})")
    from ..phantom.case import COHORT_HARD_CASES

    hard = "touching" if args.touching else COHORT_HARD_CASES if args.hard_cases is None else args.hard_cases

    from ..phantom import format_report, lesion_table, read_lesion_files, save_report, write_cohort
    from ..phantom.cohort import case_paths
    from ..phantom.case import case_id
    from ..progress import tqdm_progress

    report = args.out / "report"
    outputs = [p for k in range(args.n) for p in case_paths(args.out, case_id(args.seed + k)).values()]
    outputs += [report / n for n in ("lesions.csv", "summary.csv", "report.txt", "distributions.png")] if args.report else []
    check_outputs(outputs, args)
    if args.n:
        tqdm = tqdm_progress(unit="case")

        def progress(done: int, total: int, what: str) -> None:
            if done:
                finished(args, case_id(args.seed + done - 1))
            tqdm(done, total, what)

        write_cohort(args.out, args.n, args.seed, args.preset, misregistration=not args.no_misregistration,
                     hard_cases=hard, progress=progress, scanner=args.scanner,
                     delineation=args.delineation)
        last = args.seed + args.n - 1
        print(f"wrote {args.n} case(s) PHANTOM-{args.seed:04d}..PHANTOM-{last:04d} ({args.preset}) to {args.out}")
    if args.report:
        records = read_lesion_files(args.out)
        table = lesion_table(records)
        print(format_report(table, len(records)))
        paths = save_report(table, len(records), report)
        print(f"report files: {', '.join(str(p) for p in paths.values())}")
    return 0
