"""Lesion-table refresh after a region edit (target <= 50 ms): the live table against measuring everything.

A brush-sized edit (a 7x7x3-voxel block added to a lesion, then removed) is applied ``--repeats`` times;
each time :class:`napari_hnc.pet.live.LiveLesionTable` re-measures the lesions in the edited box, and
:func:`napari_hnc.quantify` measures the whole study for comparison. Prints the medians.

Usage: ``python benchmarks/lesion_table.py [--study PATH] [--repeats 30]`` (default: phantom seed 1,
preset "small", five lesions; ``--study`` takes any study with labels, e.g. the bundled STS_001 sample).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", help="a study with labels (default: a five-lesion phantom)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import napari_hnc
    from napari_hnc.annotation import components
    from napari_hnc.pet.live import LiveLesionTable

    if args.study:
        study = napari_hnc.load_study(args.study)
    else:
        from napari_hnc.phantom import generate_case

        study = generate_case(1, "small").study
    labels = np.array(study.labels.array, dtype=np.uint8)
    instances = study.labels.metadata.get("instances")
    instances = np.array(instances if instances is not None else components(labels), dtype=np.uint16)
    table = LiveLesionTable(study, study.grid)
    table.update(labels, instances)
    lesion = int(np.bincount(instances.ravel())[1:].argmin()) + 1  # the smallest lesion: the common edit
    where = np.argwhere(instances == lesion)
    edge = where[where[:, 0].argmax()]  # its last slice
    box = tuple(slice(max(c - r, 0), c + r + 1) for c, r in zip(edge, (1, 3, 3)))
    label = int(labels[tuple(edge)])

    live, full = [], []
    for i in range(args.repeats):
        add = i % 2 == 0
        block_l, block_i = labels[box], instances[box]
        if add:
            free = block_i == 0
            block_l[free], block_i[free] = label, lesion
        else:
            mine = block_i == lesion
            keep = np.zeros(block_i.shape, bool)
            keep[tuple(c - s.start for c, s in zip(edge, box))] = True
            block_l[mine & ~keep], block_i[mine & ~keep] = 0, 0
        start = time.perf_counter()
        table.update(labels, instances, box)
        live.append(time.perf_counter() - start)
        if i < 5:
            volume = study.grid.with_array(labels, role="labels")
            volume.metadata["instances"] = instances
            start = time.perf_counter()
            napari_hnc.quantify(study, volume)
            full.append(time.perf_counter() - start)
    print(f"study {study.case_id}: grid {study.grid.shape}, {len(table.frame())} lesions, edit box "
          f"{tuple(int(s.stop - s.start) for s in box)} voxels on lesion {lesion}; {os.cpu_count()} CPUs")
    print(f"live table refresh after a region edit: median {1000 * statistics.median(live):.1f} ms "
          f"(min {1000 * min(live):.1f}, max {1000 * max(live):.1f}, n={len(live)})")
    print(f"full quantify for comparison:           median {1000 * statistics.median(full):.1f} ms (n={len(full)})")


if __name__ == "__main__":
    main()
