"""``napari-hnc segment``: automatic segmentation of one study or a whole cohort."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_device_argument, add_overwrite_argument, check_device, check_outputs, finished

HELP = "segment PET/CT studies automatically (a labels NIfTI on the CT grid per case)"
DESCRIPTION = (
    "Segment primary tumour (1) and lymph nodes (2) in every study found in the inputs: files of a study, "
    "study folders or dataset roots (HECKTOR 2022 <id>__CT/__PT.nii.gz, HECKTOR 2021 <id>_ct/_pt.nii.gz, "
    "autoPET CTres/SUV.nii.gz; .nii or .nii.gz). Per case it writes OUT/<case_id>_pred.nii.gz (uint8 labels on "
    "the CT grid, with the CT's header; the _pred name keeps it from ever being taken for a study's reference "
    "labels) and OUT/<case_id>_lesions.csv (one row per lesion: volume, SUVmax/mean/peak, TLG); "
    "OUT/segment_summary.csv lists every case and the region it was segmented in. By default the model runs on "
    "the head and neck only (--region auto: found from the body outline, the shoulders and the brain; a study "
    "already limited to the head and neck keeps its whole field, and so does one where the finder is unsure). "
    "Existing outputs are replaced only with --overwrite (or skipped with --resume). Started by torchrun (e.g. "
    "`torchrun --nproc_per_node=4 -m "
    "napari_hnc.cli segment ...`), the cases are shared among the processes, one GPU each."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._study_options import _NEGATIVE_VALUE

    if hasattr(parser, "_negative_number_matcher"):  # let "--region -250,-250,-400,250,250,100" through
        parser._negative_number_matcher = _NEGATIVE_VALUE
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="study files, study folders or dataset roots")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--model", default="default",
                        help="model name or alias, or the path of a model card .json (default: %(default)s)")
    add_device_argument(parser)
    parser.add_argument("--resume", action="store_true", help="skip cases whose outputs already exist")
    add_overwrite_argument(parser, "existing outputs of the cases")
    parser.add_argument("--region", default="auto", metavar="auto|whole|X0,Y0,Z0,X1,Y1,Z1",
                        help="where the model runs: auto (the head and neck, found per study; default), whole "
                             "(the whole field), or a box in world RAS mm, e.g. --region=-250,-250,-400,250,250,100")
    parser.add_argument("--tta", action="store_true", help="average over mirrored inputs too (8x slower)")
    parser.add_argument("--overlap", type=float, default=0.25, help="sliding-window tile overlap (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="tiles per forward pass")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all, shared among ranks)")


def run(args: argparse.Namespace) -> int:
    import functools
    import sys
    import time

    from tqdm.auto import tqdm

    from ..cli import UsageError
    from ..errors import StudyError
    from ..headneck import RegionError, parse_region
    from ..inference.automatic import segment
    from ..inference.cohort import collect_studies, describe, existing_outputs, segment_case, write_summary
    from ..inference.distributed import distributed, gather, shard
    from ..io.atomic import check_writable
    from ..models.registry import load_model

    if not 0.0 <= args.overlap < 1.0:
        raise UsageError(f"--overlap must lie in [0, 1), got {args.overlap}")
    try:
        region = parse_region(args.region)
    except RegionError as exc:
        raise UsageError(str(exc)) from None
    try:
        studies = collect_studies(args.inputs)
    except StudyError as exc:
        raise UsageError(str(exc)) from None
    if args.resume and args.overwrite:
        raise UsageError("give --resume (skip finished cases) or --overwrite (redo them), not both")
    if not args.resume:
        check_outputs(existing_outputs(studies, args.out), args, " (or --resume to skip finished cases)")
    check_device(args.device)
    check_writable(args.out)
    started = time.perf_counter()
    with distributed(args.device) as info:
        model = load_model(args.model, task="automatic")
        run_case = functools.partial(
            segment, model=model, device=info.device(args.device), region=region, tta=args.tta, overlap=args.overlap,
            batch_size=args.batch_size, threads=args.threads or info.cpu_threads(),
        )
        mine = shard(studies, info)
        results = []
        try:
            for files in tqdm(mine, desc=f"segment {info.label()}".strip(), unit="case", position=info.rank):
                result = segment_case(files, args.out, run_case, resume=args.resume, info=info)
                if result.status == "failed":
                    tqdm.write(f"napari-hnc segment: {result.case_id} failed: {result.message}", file=sys.stderr)
                else:
                    finished(args, result.case_id)
                results.append(result)
        except KeyboardInterrupt:
            if results and info.is_main:  # what is done stays usable: --resume continues from it
                write_summary(results, args.out)
            raise
        everything = gather(results, info)
    if info.is_main:
        summary = write_summary(everything, args.out)
        print(describe(everything, time.perf_counter() - started))
        print(f"outputs in {args.out} (summary: {summary.name})")
    failed = [r for r in (everything if info.is_main else results) if r.status == "failed"]
    if failed and all(r.bad_region for r in failed):
        return 2  # the --region box fits none of these studies: bad usage
    return 1 if failed else 0
