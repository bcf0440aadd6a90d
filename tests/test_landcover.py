from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

import cdtools
from cdtools.errors import CdtoolsWarning, GridError, OutputExistsError, ParameterError
from cdtools.landcover.classes import EUROSAT_CLASSES, LANDCOVER_COLOURS
from cdtools.landcover.classifier import LandCoverClassifier
from cdtools.landcover.data import PatchesFolderError, prepare_landcover_data
from cdtools.landcover.transition import (
    COLUMNS,
    classify_patches,
    list_transitions,
    plot_transitions,
    transitions,
)
from cdtools.learn.package import PackageError
from cdtools.synthetic import make_landcover_patches
from cdtools.synthetic.scene_patches import make_scene_patches
from tests.conftest import EASY, write_easy_patches


def easy_image(name: str, *, size: int = 32, seed: int = 1) -> np.ndarray:
    """A (3, size, size) float32 patch of an EASY class in raw 0-255 units."""
    noise = np.random.default_rng(seed).normal(0, 25, (3, size, size))
    return np.clip(np.array(EASY[name])[:, None, None] + noise, 0, 255).astype(np.float32)


@pytest.fixture(scope="module")
def easy(tmp_path_factory: pytest.TempPathFactory) -> LandCoverClassifier:
    folder = write_easy_patches(tmp_path_factory.mktemp("easy") / "patches")
    dls = prepare_landcover_data(folder, size=32, batch_size=8, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    classifier = LandCoverClassifier(dls, pretrained=False)
    classifier.fit(3, lr=3e-3)
    return classifier


@dataclass(frozen=True)
class FakePatch:
    """What cdtools.regions.spotcheck.grab_patches returns (RegionPatch), made by hand."""

    id: int
    before: np.ndarray
    after: np.ndarray
    row: int = 0
    col: int = 0
    centroid: tuple[float, float] = (0.0, 0.0)


# ----------------------------------------------------------------------- data
def test_dataloaders_from_class_folders(tmp_path: Path) -> None:
    folder = make_landcover_patches(tmp_path / "patches", n_per_class=5, size=32)
    dls = prepare_landcover_data(folder, size=32, batch_size=8, val_split_pct=0.2, seed=0)
    assert dls.classes == EUROSAT_CLASSES and dls.colours == LANDCOVER_COLOURS
    assert (len(dls.train_ds), len(dls.valid_ds)) == (40, 10)  # one of five per class
    valid_classes = sorted(dls.classes[int(y)] for _, y in dls.valid_ds)
    assert valid_classes == sorted(EUROSAT_CLASSES)  # stratified
    x, y = dls.one_batch()
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(x.mean())) < 0.5 and 0.5 < float(x.std()) < 1.5  # normalised
    assert len(dls.stats.mean) == 3 and all(0 < m < 255 for m in dls.stats.mean)
    grid = dls.show_batch(rows=1, columns=3)  # rows x columns patches, titled
    assert len(grid.axes) == 3 and all(ax.get_title() for ax in grid.axes)
    again = prepare_landcover_data(folder, size=32, batch_size=8, val_split_pct=0.2, seed=0)
    assert [str(p) for p in again.valid_ds.items] == [str(p) for p in dls.valid_ds.items]


def test_dataloaders_resize_and_find_a_nested_class_folder(tmp_path: Path) -> None:
    write_easy_patches(tmp_path / "eurosat" / "2750", n=4, size=40)
    dls = prepare_landcover_data(tmp_path / "eurosat", size=24, batch_size=4)
    assert dls.classes == tuple(EASY) and dls.path == tmp_path / "eurosat" / "2750"
    assert dls.one_batch()[0].shape == (4, 3, 24, 24)


def test_scene_patches_are_labelled_by_their_centre_and_merge_with_others(tmp_path: Path) -> None:
    options = {"seeds": [3], "world_size": 256, "size": 32, "per_scene": 6, "per_change": 1}
    folder = make_scene_patches(tmp_path / "scene", **options)
    files = sorted(folder.glob("*/*.png"))
    record = json.loads((folder / "scene_patches.json").read_text())
    assert len(files) == sum(record["counts"].values()) >= 2 * 6
    assert {f.parent.name for f in files} <= set(EUROSAT_CLASSES)
    assert all(f.name.startswith(f.parent.name + "_s3_") for f in files)
    assert np.asarray(Image.open(files[0])).shape == (32, 32, 3)
    again = make_scene_patches(tmp_path / "again", **options)
    assert [f.read_bytes() for f in files[:3]] == [
        (again / f.parent.name / f.name).read_bytes() for f in files[:3]
    ]
    with pytest.raises(OutputExistsError):
        make_scene_patches(tmp_path / "scene", **{**options, "per_scene": 7})
    themed = make_landcover_patches(tmp_path / "themed", n_per_class=2, size=32)
    dls = prepare_landcover_data([themed, folder], size=32, batch_size=4)
    assert dls.classes == EUROSAT_CLASSES and dls.path == themed
    assert len(dls.train_ds) + len(dls.valid_ds) == 20 + len(files)


def test_a_folder_without_class_folders_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PatchesFolderError, match="is not a folder"):
        prepare_landcover_data(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(PatchesFolderError, match=r"one folder per class.*make_landcover_patches"):
        prepare_landcover_data(tmp_path / "flat")
    (tmp_path / "flat" / "empty_class").mkdir()
    with pytest.raises(PatchesFolderError, match="found 0"):
        prepare_landcover_data(tmp_path / "flat")
    with pytest.raises(ParameterError, match="val_split_pct"):
        prepare_landcover_data(tmp_path / "flat", val_split_pct=0)


# ----------------------------------------------------------------- classifier
def test_classifier_learns_easy_classes(easy: LandCoverClassifier) -> None:
    assert easy.classes == tuple(EASY) and easy.spec.training["weights"] == "random"
    assert len(easy.learn.recorder.values) == 3
    table = easy.per_class_accuracy()
    assert list(table.columns) == ["accuracy", "precision", "support"]
    assert table["support"].sum() == 12
    assert easy.accuracy() > 0.6  # chance is 1/3
    matrix = easy.confusion_matrix()
    assert matrix.shape == (3, 3) and matrix.to_numpy().sum() == 12
    grid = easy.show_results(rows=2, columns=3)
    assert len(grid.axes) == 6 and all(ax.get_title() for ax in grid.axes)


def test_predict_resizes_and_returns_probabilities(easy: LandCoverClassifier) -> None:
    images = np.stack([easy_image(name, size=48) for name in EASY])
    index, prob = easy.predict(images)
    assert index.shape == (3,) and prob.shape == (3, 3) and prob.dtype == np.float32
    assert np.allclose(prob.sum(1), 1, atol=1e-5)
    assert np.array_equal(index, prob.argmax(1))
    one, _ = easy.predict(images[0])  # a single (bands, h, w) patch
    assert one.shape == (1,) and one[0] == index[0]
    with pytest.raises(GridError, match=r"takes \(n, 3, h, w\)"):
        easy.predict(np.zeros((1, 4, 32, 32)))


def test_predict_with_tta_does_not_see_turns_and_flips(easy: LandCoverClassifier) -> None:
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    turned = np.ascontiguousarray(np.rot90(image, 1, axes=(2, 3))[..., ::-1])
    _, prob = easy.predict(image, tta=True)
    _, prob_turned = easy.predict(turned, tta=True)
    assert np.allclose(prob, prob_turned, atol=1e-5) and np.isclose(prob.sum(), 1, atol=1e-5)


def test_save_and_from_model_round_trip(easy: LandCoverClassifier, tmp_path: Path) -> None:
    package = easy.save(tmp_path / "classifier", zip=True)
    assert sorted(p.name for p in package.iterdir()) == ["model.json", "model.safetensors"]
    spec = json.loads((package / "model.json").read_text())
    assert spec["format"] == "cdtools-landcover-model" and spec["classes"] == list(EASY)
    assert spec["input_size"] == 32 and spec["bands"] == ["red", "green", "blue"]
    assert len(spec["stats"]["mean"]) == 3 and spec["backbone"] == "resnet18"
    assert set(spec["metrics"]["per_class_accuracy"]) == set(EASY)
    images = np.stack([easy_image(name, seed=5) for name in EASY])
    for source in (package, package.with_suffix(".zip"), package / "model.json"):
        loaded = LandCoverClassifier.from_model(source)
        assert loaded.classes == easy.classes and loaded.learn is None
        index, prob = loaded.predict(images)
        expected_index, expected_prob = easy.predict(images)
        assert np.array_equal(index, expected_index) and np.array_equal(prob, expected_prob)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        easy.save(tmp_path / "classifier")


def test_from_model_with_data_evaluates_again(easy: LandCoverClassifier, tmp_path: Path) -> None:
    package = easy.save(tmp_path / "classifier")
    other = write_easy_patches(tmp_path / "other", n=8, seed=3)
    with pytest.raises(ParameterError, match=r"stats=classifier\.spec\.stats"):
        LandCoverClassifier.from_model(package, data=prepare_landcover_data(other, size=32))
    data = prepare_landcover_data(other, size=32, stats=easy.spec.stats)
    loaded = LandCoverClassifier.from_model(package, data=data)
    assert loaded.confusion_matrix().to_numpy().sum() == len(data.valid_ds)
    with pytest.raises(ParameterError, match="classes"):
        LandCoverClassifier.from_model(package, data=prepare_landcover_data(other, size=24))


def test_from_model_refuses_pickles_and_change_models(
    easy: LandCoverClassifier, tmp_path: Path
) -> None:
    package = easy.save(tmp_path / "classifier")
    (package / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(PackageError, match="pickle"):
        LandCoverClassifier.from_model(package)
    (package / "extra.pkl").unlink()
    state = torch.nn.Linear(2, 2).state_dict()
    torch.save(state, package / "model.safetensors")  # a torch pickle under the right name
    with pytest.raises(PackageError, match="not a safetensors file"):
        LandCoverClassifier.from_model(package)
    change = tmp_path / "change"
    change.mkdir()
    spec = json.loads((easy.save(tmp_path / "again") / "model.json").read_text())
    (change / "model.json").write_text(json.dumps({**spec, "format": "cdtools-change-model"}))
    (change / "model.safetensors").write_bytes(
        (tmp_path / "again" / "model.safetensors").read_bytes()
    )
    with pytest.raises(PackageError, match=r"ChangeDetector\.from_model"):
        LandCoverClassifier.from_model(change)


def test_weight_file_loads_into_the_backbone_and_freezes_it(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    from safetensors.torch import save_file

    save_file(state, tmp_path / "resnet18.safetensors")
    folder = write_easy_patches(tmp_path / "patches", n=4)
    dls = prepare_landcover_data(folder, size=32, batch_size=4)
    classifier = LandCoverClassifier(dls, pretrained=tmp_path / "resnet18.safetensors")
    assert classifier.spec.training["weights"] == "file:resnet18.safetensors"
    body = classifier.model[0]
    assert torch.equal(body[0].weight, state["conv1.weight"])
    assert torch.equal(body[7][1].conv2.weight, state["layer4.1.conv2.weight"])
    assert not body[0].weight.requires_grad  # frozen: the head trains first
    with pytest.raises(ParameterError, match="backbone must be one of"):
        LandCoverClassifier(dls, backbone="vgg16", pretrained=False)


def test_auto_without_imagenet_weights_warns_and_trains_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_models import _resnet18_entry

    _resnet18_entry(tmp_path, monkeypatch, url="http://127.0.0.1:9/resnet18-f37072fd.pth")
    dls = prepare_landcover_data(write_easy_patches(tmp_path / "p", n=4), size=32, batch_size=4)
    with pytest.warns(CdtoolsWarning, match="random initialisation"):
        classifier = LandCoverClassifier(dls, pretrained="auto")
    assert classifier.spec.training["weights"] == "random"


def test_sample_classifier_is_trained_once_then_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdtools import samples as trained

    tiny = {
        "patch_size": 32, "themed_per_class": 2, "scene_seeds": [3], "scene_size": 256,
        "per_scene": 2, "per_change": 1, "batch_size": 8, "epochs": 1,
    }  # fmt: skip
    for key, value in tiny.items():
        monkeypatch.setitem(trained.LANDCOVER_RECIPE, key, value)
    first = cdtools.sample_landcover_classifier(root=tmp_path)
    assert (tmp_path / "model" / "model.json").exists() and first.learn is not None
    again = cdtools.sample_landcover_classifier(root=tmp_path)
    assert again.classes == EUROSAT_CLASSES and again.spec.input_size == 32
    images = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32))
    assert np.array_equal(first.predict(images)[1], again.predict(images)[1])


# ------------------------------------------------------------ classify_patches
def test_classify_patches_table(easy: LandCoverClassifier) -> None:
    patches = [
        FakePatch(7, easy_image("Green"), easy_image("Red")),
        FakePatch(3, easy_image("Blue"), easy_image("Blue", seed=2)),
    ]
    table = classify_patches(patches, easy)
    assert tuple(table.columns) == COLUMNS and table["id"].tolist() == [7, 3]
    assert table["class_before"].tolist() == ["Green", "Blue"]
    assert table["class_after"].tolist() == ["Red", "Blue"]
    assert list(table["class_before"].cat.categories) == list(EASY)
    assert table[["confidence_before", "confidence_after"]].gt(0.34).all().all()
    empty = classify_patches([], easy)
    assert tuple(empty.columns) == COLUMNS and len(empty) == 0


def test_classify_patches_handles_nan_padding(easy: LandCoverClassifier) -> None:
    padded = easy_image("Red")
    padded[:, :, :12] = np.nan  # a region at the scene's left edge
    nothing = np.full((3, 32, 32), np.nan, dtype=np.float32)
    patches = [FakePatch(1, padded, easy_image("Green")), FakePatch(2, nothing, padded)]
    table = classify_patches(patches, easy)
    assert table.loc[0, "class_before"] == "Red" and table.loc[1, "class_after"] == "Red"
    assert pd.isna(table.loc[1, "class_before"]) and np.isnan(table.loc[1, "confidence_before"])


def test_classify_patches_bands_and_classes_must_match(easy: LandCoverClassifier) -> None:
    rgbn = np.concatenate([easy_image("Red"), np.full((1, 32, 32), 50, np.float32)])
    patches = [FakePatch(1, rgbn, rgbn)]
    with pytest.raises(GridError, match=r"4 bands but the classifier takes 3 \(red, green, blue"):
        classify_patches(patches, easy)
    table = classify_patches(patches, easy, bands=[0, 1, 2])
    assert table.loc[0, "class_before"] == "Red"
    with pytest.raises(ParameterError, match=r"classes \['Blue', 'Green', 'Red'\].*AnnualCrop"):
        classify_patches(patches, easy, bands=[0, 1, 2], classes=EUROSAT_CLASSES)
    with pytest.raises(ParameterError, match="RegionPatch"):
        classify_patches([np.zeros((3, 8, 8))], easy)


# ----------------------------------------------------------------- transitions
@pytest.fixture
def regions_table() -> pd.DataFrame:
    classes = pd.CategoricalDtype(["Forest", "Pasture", "Residential", "SeaLake"])
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "area_m2": [100.0, 50.0, 30.0, 20.0, 5.0, 70.0],
            "class_before": pd.Series(
                ["Forest", "Forest", "Pasture", "Pasture", "Forest", "Forest"], dtype=classes
            ),
            "confidence_before": [0.9, 0.8, 0.7, 0.9, 0.9, 0.5],
            "class_after": pd.Series(
                ["Residential", "Residential", "SeaLake", "Residential", "Pasture", "SeaLake"],
                dtype=classes,
            ),
            "confidence_after": [0.9, 0.6, 0.95, 0.9, 0.9, 0.9],
        }
    )


def test_transitions_on_a_known_case(regions_table: pd.DataFrame) -> None:
    matrix = transitions(regions_table, min_confidence=0.0)
    labels = ["Forest", "Pasture", "Residential", "SeaLake"]
    expected = pd.DataFrame(
        [
            [0.0, 5.0, 150.0, 70.0],
            [0.0, 0.0, 20.0, 30.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ],
        index=pd.Index(labels, name="before"),
        columns=pd.Index(labels, name="after"),
    )
    pd.testing.assert_frame_equal(matrix, expected)
    assert matrix.attrs["regions"] == 6 and matrix.to_numpy().sum() == 275.0


def test_transitions_filters_by_confidence_and_area(regions_table: pd.DataFrame) -> None:
    matrix = transitions(regions_table)  # default: both confidences at least 0.55
    assert matrix.loc["Forest", "SeaLake"] == 0.0  # region 6 is unsure before
    assert matrix.loc["Forest", "Residential"] == 150.0
    assert matrix.attrs["regions"] == 5
    strict = transitions(regions_table, min_confidence=0.75, min_area_m2=25.0)
    assert strict.attrs["regions"] == 1  # only region 1
    assert list(strict.index) == ["Forest", "Residential"]
    assert strict.to_numpy().sum() == 100.0
    ordered = transitions(regions_table, classes=["SeaLake", "Forest", "Residential"])
    assert list(ordered.columns) == ["SeaLake", "Forest", "Residential"]
    assert ordered.loc["Forest", "Residential"] == 150.0


def test_transitions_of_nothing_and_of_a_wrong_table(regions_table: pd.DataFrame) -> None:
    empty = transitions(regions_table.iloc[:0])
    assert empty.shape == (0, 0) and empty.index.name == "before"
    assert list_transitions(empty) == [] and plot_transitions(empty).axes
    with pytest.raises(ParameterError, match=r"lacks columns \['confidence_after'\].*merge"):
        transitions(regions_table.drop(columns="confidence_after"))
    plain = regions_table.astype({"class_before": str, "class_after": str})
    assert list(transitions(plain).index) == ["Forest", "Pasture", "Residential", "SeaLake"]


def test_list_and_plot_transitions(regions_table: pd.DataFrame) -> None:
    matrix = transitions(regions_table, min_confidence=0.0)
    assert list_transitions(matrix) == [
        "Forest -> Residential: 150 m2",
        "Forest -> SeaLake: 70 m2",
        "Pasture -> SeaLake: 30 m2",
        "Pasture -> Residential: 20 m2",
        "Forest -> Pasture: 5 m2",
    ]
    assert list_transitions(matrix * 100, top=1) == ["Forest -> Residential: 15,000 m2"]
    fig = plot_transitions(matrix)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(matrix.index)
    assert sorted(t.get_text() for t in ax.texts) == sorted(["150", "70", "30", "20", "5"])


def test_public_names_are_exported() -> None:
    for name in (
        "LandCoverClassifier",
        "prepare_landcover_data",
        "classify_patches",
        "transitions",
        "plot_transitions",
        "list_transitions",
        "sample_landcover_classifier",
        "make_scene_patches",
    ):
        assert name in cdtools.__all__ and callable(getattr(cdtools, name))
    assert callable(cdtools.transitions)  # the module is `transition`: no shadowing
