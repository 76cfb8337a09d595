"""Clustering quality over many libraries, faced against the reference methods, in seconds.

Each shared set is encoded once by faced's own pipeline and cached (benchmarks/.cache/quality);
then every clustering variant is scored over many libraries drawn from them:

- `lfw_dev` whole; without its two giants (George W. Bush, Colin Powell); 10 random halves by
  people; 20 family-sized libraries (8-30 people with 4-40 photos each, plus ~20% strangers);
- `fixture_small` cut to 3, 4 and 6 photos per person (5 draws each), and whole;
- `fixture_extras` (group photos labelled from LABELS.csv, no-face photos) and
  `jurassic_park_noisy` (web photos: statues, drawings, wrong labels);
- grey portraits made from `lfw_dev` (40 people, 10 grey 92x112 photos each, like the classic
  grey portrait sets), whole and cut to 5 per person (5 draws).

A library is scored as a user sees it: each photo's subject (`faced eval`'s rule: its largest face
not cut by the frame) carries the photo's label
(bystanders are clustered, not scored; in group photos each face is labelled from LABELS.csv),
and a cluster smaller than `clustering.min_faces` is no folder, so its faces count as alone.
Per kind it prints the median and the worst pairwise F, BCubed F and BCubed precision, the share
of people with 4+ photos who get exactly one folder holding 90% of them, and faces from photos
without a face that end up in a folder. `--methods` picks methods; `--json FILE` writes all.

    python benchmarks/quality.py [--detector yunet]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from faced.config import ClusteringConfig, Config
from faced.people.cluster import cluster_faces
from faced.people.identity import same_boxes
from faced.pipeline.rules import cluster_params
from faced.records import Box
from faced.tools.metrics import bcubed, pairwise, subject_face

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "quality"
FACES = Path(os.environ.get("FACED_TEST_PHOTOS", HERE.parent.parent / "shared" / "data" / "faces"))
GIANTS = ("George_W_Bush", "Colin_Powell")
NONFACE = "<no face>"  # the label of a face found in a photo that has none


@dataclass(frozen=True)
class FaceSet:
    """Faces of some photos: descriptors, which photo, and the label scored ("" unscored)."""

    enc: np.ndarray  # float32 (n, 128)
    photo: np.ndarray  # int64 (n,)
    label: np.ndarray  # str (n,)
    photo_label: dict[int, str]  # photo id -> its folder's label
    weak: np.ndarray  # bool (n,): found only below the detector's own line

    def photos(self, keep: set[int]) -> FaceSet:
        mask = np.isin(self.photo, sorted(keep))
        return FaceSet(
            self.enc[mask],
            self.photo[mask],
            self.label[mask],
            {p: lab for p, lab in self.photo_label.items() if p in keep},
            self.weak[mask],
        )


# -- encoding, once ----------------------------------------------------------------------------


def encode_set(name: str, detector: Literal["hog", "yunet"] = "hog") -> FaceSet:
    """Every face of a shared set (or of a set derived from one, DERIVED), as faced's pipeline
    finds and describes it with `detector` (cached per detector), labelled as `label_faces`
    labels them (at load: a change of the labelling rule needs no encoding)."""
    cache = CACHE / (f"{name}.npz" if detector == "hog" else f"{name}.{detector}.npz")
    if name in DERIVED:
        with tempfile.TemporaryDirectory(prefix="faced-quality-") as tmp:
            root = Path(tmp)
            if not cache.exists():
                source, make = DERIVED[name]
                make(FACES / source, root)
            return _encode(name, root, cache, detector)
    return _encode(name, FACES / name, cache, detector)


def _encode(name: str, root: Path, cache: Path, detector: Literal["hog", "yunet"]) -> FaceSet:
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        if "box" in data.files:  # else a cache from before boxes were kept: encode again
            kept = json.loads(str(data["photos"]))
            known = {int(k): (rel, w, h) for k, (rel, w, h) in kept.items()}
            return _labelled(root, data["enc"], data["photo"], data["box"], data["weak"], known)
    from faced.pipeline.discover import walk
    from faced.pipeline.scan import local_encoder

    cfg = Config()
    cfg = dataclasses.replace(cfg, detection=dataclasses.replace(cfg.detection, detector=detector))
    paths = [p for p, _, _ in walk([root], cfg.images)]
    print(f"encoding {len(paths)} photos of {name} once (cached in {cache})...", file=sys.stderr)
    enc, photo, box, weak = [], [], [], []
    photos: dict[int, tuple[str, int, int]] = {}
    index = {p: i for i, p in enumerate(sorted(paths))}
    for result in (r for done in local_encoder(cfg)(sorted(paths)) for r in done):
        pid = index[result.path]
        photos[pid] = (
            os.fsdecode(result.path[len(os.fsencode(root)) + 1 :]),
            result.width,
            result.height,
        )
        for face in result.faces:
            enc.append(face.encoding)
            photo.append(pid)
            box.append(face.box)
            weak.append(face.score is not None and face.score < 0)
    arrays = (
        np.array(enc, np.float32).reshape(-1, 128),
        np.array(photo, np.int64),
        np.array(box, np.int64).reshape(-1, 4),
        np.array(weak, dtype=bool),
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        enc=arrays[0],
        photo=arrays[1],
        box=arrays[2],
        weak=arrays[3],
        photos=json.dumps(photos),
    )
    return _labelled(root, *arrays, photos)


def grey_portraits(src: Path, out: Path) -> None:
    """A set like the classic grey portrait sets (40 people, 10 photos each, 92x112 grey):
    the first 40 of `lfw_dev`'s (`src`) people seen 10+ times, their first 10 photos, the
    face's region cut from the middle of each (LFW centres its faces), made grey and small."""
    people = sorted(p.name for p in src.iterdir() if len(list(p.glob("*.jpg"))) >= GREY_PHOTOS)
    for person in people[:GREY_PEOPLE]:
        (out / person).mkdir(parents=True)
        for photo in sorted((src / person).glob("*.jpg"))[:GREY_PHOTOS]:
            with Image.open(photo) as im:
                grey = im.convert("L").crop(GREY_CROP).resize(GREY_SIZE, Image.Resampling.LANCZOS)
            grey.save(out / person / f"{photo.stem}.png")


# Sets derived from a shared one: name -> (the shared set, what makes it from that set's
# folder into a temporary one, when first encoded; only the encodings are kept).
GREY_PEOPLE, GREY_PHOTOS = 40, 10
GREY_CROP = (60, 46, 190, 204)  # of LFW's 250x250: the head, in the portraits' proportions
GREY_SIZE = (92, 112)
DERIVED: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "lfw_grey": ("lfw_dev", grey_portraits)
}


def _labelled(
    root: Path,
    enc: np.ndarray,
    photo: np.ndarray,
    box: np.ndarray,
    weak: np.ndarray,
    photos: dict[int, tuple[str, int, int]],
) -> FaceSet:
    """The faces with their labels (photos: id -> (path under root, width, height))."""
    groups = _group_labels(root)
    label = np.full(len(enc), "", dtype=object)
    rows: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(photo.tolist()):
        rows[p].append(i)
    for p, idx in rows.items():
        rel, width, height = photos[p]
        boxes = [(int(t), int(r), int(b), int(left)) for t, r, b, left in box[idx]]
        label[idx] = label_faces(rel, boxes, width, height, groups)
    photo_label = {p: rel.split("/")[0] for p, (rel, _, _) in photos.items()}
    return FaceSet(enc, photo, label.astype(str), photo_label, weak)


def _group_labels(root: Path) -> dict[str, list[tuple[str, Box]]]:
    """fixture_extras: each group photo's people with their boxes, from LABELS.csv."""
    table = root / "LABELS.csv"
    out: dict[str, list[tuple[str, Box]]] = {}
    if not table.exists():
        return out
    with table.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names = [n.strip() for n in row["persons_left_to_right"].split(";") if n.strip()]
            boxes: list[Box] = []
            for b in row["face_boxes_hog_up1_trbl"].split(";"):
                if b.strip():
                    t, r, bottom, left = (int(v) for v in b.split(","))
                    boxes.append((t, r, bottom, left))
            boxes.sort(key=lambda b: b[3])  # left to right, as the names are
            named = [n for n in names if not n.lower().startswith("unidentified")]
            if len(boxes) == len(names):
                out[row["path"]] = [
                    (n if n in named else "", b) for n, b in zip(names, boxes, strict=True)
                ]
    return out


def label_faces(
    rel: str, boxes: list[Box], width: int, height: int, groups: dict[str, list[tuple[str, Box]]]
) -> list[str]:
    """The label of each face of the photo at `rel` ("" unscored): in a group photo from its
    box, elsewhere the photo's subject (`faced eval`'s rule, metrics.subject_face) carries the
    folder's label and bystanders are not scored."""
    folder = rel.split("/")[0]
    if folder == "noface":
        return [NONFACE] * len(boxes)
    out = [""] * len(boxes)
    if rel in groups:  # a group photo: label each face by its box
        known = groups[rel]
        for k, f in same_boxes([b for _, b in known], boxes):
            out[f] = known[k][0].split("(")[-1].rstrip(")").strip() if known[k][0] else ""
        return out
    if folder == "group":
        return out
    subject = subject_face(boxes, width, height)
    if subject is not None:
        out[subject] = folder
    return out


# -- libraries ---------------------------------------------------------------------------------


def libraries(sets: dict[str, FaceSet], seed: int) -> Iterator[tuple[str, str, FaceSet]]:
    """(kind, name, faces) of every library the benchmark scores."""
    rng = np.random.default_rng(seed)
    lfw = sets.get("lfw_dev")
    if lfw is not None:
        by_person = _photos_by_label(lfw)
        yield "news archive", "lfw_dev", lfw
        yield (
            "news archive",
            "lfw_dev without giants",
            lfw.photos({p for lab, ps in by_person.items() if lab not in GIANTS for p in ps}),
        )
        people = sorted(by_person)
        for i in range(10):
            half = set(rng.choice(people, len(people) // 2, replace=False))
            yield (
                "news halves",
                f"half {i}",
                lfw.photos({p for lab in half for p in by_person[lab]}),
            )
        many = [lab for lab in people if len(by_person[lab]) >= 4]
        few = [lab for lab in people if len(by_person[lab]) < 4]
        for i in range(20):
            k = int(rng.integers(8, 31))
            chosen = rng.choice(many, k, replace=False)
            keep: set[int] = set()
            for lab in chosen:
                ps = sorted(by_person[lab])
                n = min(len(ps), int(rng.integers(4, 41)))
                keep |= set(rng.choice(ps, n, replace=False).tolist())
            strangers = [p for lab in few for p in by_person[lab]]
            extra = max(1, round(len(keep) * 0.25))  # ~20% of the library
            keep |= set(rng.choice(strangers, extra, replace=False).tolist())
            yield "family", f"family {i}", lfw.photos(keep)
    small = sets.get("fixture_small")
    if small is not None:
        by_person = _photos_by_label(small)
        yield "small, whole", "fixture_small", small
        for cut in (3, 4, 6):
            for draw in range(5):
                keep = _cut(by_person, cut, rng)
                yield f"small, {cut} per person", f"fixture_small/{cut} #{draw}", small.photos(keep)
    grey = sets.get("lfw_grey")
    if grey is not None:
        yield "grey portraits", "lfw_grey", grey
        by_person = _photos_by_label(grey)
        for draw in range(5):
            keep = _cut(by_person, 5, rng)
            yield "grey, 5 per person", f"lfw_grey/5 #{draw}", grey.photos(keep)
    if "fixture_extras" in sets:
        yield "groups and no faces", "fixture_extras", sets["fixture_extras"]
    if "jurassic_park_noisy" in sets:
        yield "web mess", "jurassic_park_noisy", sets["jurassic_park_noisy"]


def _cut(by_person: dict[str, list[int]], cut: int, rng: np.random.Generator) -> set[int]:
    """`cut` photos of each person drawn at random (all of a person's when fewer)."""
    keep: set[int] = set()
    for ps in by_person.values():
        keep |= set(rng.choice(sorted(ps), min(cut, len(ps)), replace=False).tolist())
    return keep


def _photos_by_label(fs: FaceSet) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for p, lab in fs.photo_label.items():
        out[lab].append(p)
    return out


# -- methods -----------------------------------------------------------------------------------

# (encodings, photo ids, weak detections) -> labels; the reference methods see no weak mask.
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def faced_method(enc: np.ndarray, photo: np.ndarray, weak: np.ndarray) -> np.ndarray:
    return cluster_faces(enc, photo, cluster_params(ClusteringConfig()), weak)


def faced_ungated(enc: np.ndarray, photo: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """faced without the weak-detection gate (for comparison)."""
    return cluster_faces(enc, photo, cluster_params(ClusteringConfig()))


def dbscan(eps: float, min_samples: int) -> Method:
    def run(enc: np.ndarray, photo: np.ndarray, weak: np.ndarray) -> np.ndarray:
        from sklearn.cluster import DBSCAN

        if len(enc) == 0:
            return np.zeros(0, np.int64)
        labels: np.ndarray = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(enc)
        return labels.astype(np.int64)

    return run


def hdbscan(enc: np.ndarray, photo: np.ndarray, weak: np.ndarray) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    if len(enc) < 3:
        return np.full(len(enc), -1, np.int64)
    labels: np.ndarray = HDBSCAN(min_cluster_size=2, copy=True).fit_predict(enc)
    return labels.astype(np.int64)


def chinese_whispers(enc: np.ndarray, photo: np.ndarray, weak: np.ndarray) -> np.ndarray:
    import dlib

    if len(enc) == 0:
        return np.zeros(0, np.int64)
    vectors = [dlib.vector(v.astype(float).tolist()) for v in enc]
    return np.array(dlib.chinese_whispers_clustering(vectors, 0.5), np.int64)


def average_linkage(enc: np.ndarray, photo: np.ndarray, weak: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(enc) < 2:
        return np.full(len(enc), -1, np.int64)
    tree = linkage(enc.astype(np.float64), method="average")
    labels: np.ndarray = fcluster(tree, 0.5, criterion="distance")
    return labels.astype(np.int64)


METHODS: dict[str, Method] = {
    "faced": faced_method,
    "faced, no gate": faced_ungated,
    "DBSCAN 0.5/5": dbscan(0.5, 5),
    "DBSCAN 0.45/2": dbscan(0.45, 2),
    "HDBSCAN 2": hdbscan,
    "Chinese whispers 0.5": chinese_whispers,
    "average 0.5": average_linkage,
}


# -- scoring -----------------------------------------------------------------------------------


def folders(labels: np.ndarray, min_faces: int) -> np.ndarray:
    """Clusters of `min_faces` or more are folders; every other face is alone (-1)."""
    out: np.ndarray = labels.copy()
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    small = ids[counts < min_faces]
    out[np.isin(out, small)] = -1
    return out


def score(fs: FaceSet, labels: np.ndarray, min_faces: int) -> dict[str, float]:
    pred = folders(labels, min_faces)
    scored = (fs.label != "") & (fs.label != NONFACE)
    truth, p = fs.label[scored], pred[scored]
    pw, bc = pairwise(truth, p), bcubed(truth, p)
    found = total = 0
    sizes = Counter(truth.tolist())
    for person, n in sizes.items():
        if n < 4:
            continue
        total += 1
        theirs = p[truth == person]
        majority = {
            c
            for c in np.unique(p[p >= 0])
            if Counter(truth[p == c].tolist()).most_common(1)[0][0] == person
        }
        best = max((int((theirs == c).sum()) for c in majority), default=0)
        if len(majority) == 1 and best >= 0.9 * n:
            found += 1
    nonface = int(((fs.label == NONFACE) & (pred >= 0)).sum())
    return {
        "pairwise_f": pw.f,
        "bcubed_f": bc.f,
        "bcubed_p": bc.precision,
        "found": found / total if total else float("nan"),
        "nonface_in_folders": float(nonface),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--methods",
        nargs="*",
        default=[m for m in METHODS if m != "faced, no gate"],
        help=f"methods to score (of: {', '.join(METHODS)})",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write every library's scores here")
    ap.add_argument(
        "--detector", default="hog", choices=("hog", "yunet"), help="which faces are clustered"
    )
    args = ap.parse_args()
    names = ("lfw_dev", "fixture_small", "fixture_extras", "jurassic_park_noisy", "lfw_grey")
    sets = {
        n: encode_set(n, args.detector)
        for n in names
        if (FACES / (DERIVED[n][0] if n in DERIVED else n)).is_dir()
    }
    min_faces = ClusteringConfig().min_faces
    rows: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    every: list[dict[str, object]] = []
    for kind, name, fs in libraries(sets, args.seed):
        for method in args.methods:
            t0 = time.perf_counter()
            labels = METHODS[method](fs.enc, fs.photo, fs.weak)
            s = score(fs, labels, min_faces)
            s["seconds"] = time.perf_counter() - t0
            rows[(kind, method)].append(s)
            every.append({"kind": kind, "library": name, "method": method, **s})
    kinds = list(dict.fromkeys(k for k, _ in rows))
    print(
        f"{'kind':<22} {'method':<21} {'n':>3}  {'pair F med/worst':>16}  "
        f"{'BCubed F med/worst':>18}  {'BCubed P worst':>14}  {'found med/worst':>15}  nonface"
    )
    for kind in kinds:
        for method in args.methods:
            r = rows[(kind, method)]
            pf = [x["pairwise_f"] for x in r]
            bf = [x["bcubed_f"] for x in r]
            bp = [x["bcubed_p"] for x in r]
            fd = [x["found"] for x in r if x["found"] == x["found"]]
            nf = sum(x["nonface_in_folders"] for x in r)
            found = f"{np.median(fd):.2f}/{min(fd):.2f}" if fd else "-"
            print(
                f"{kind:<22} {method:<21} {len(r):>3}  {np.median(pf):.3f}/{min(pf):.3f}"
                f"      {np.median(bf):.3f}/{min(bf):.3f}        {min(bp):.3f}"
                f"       {found:>11}  {nf:>7.0f}"
            )
    if args.json:
        args.json.write_text(json.dumps(every, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
