from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from cdtools.chips.augment import augment_pair
from cdtools.chips.data import prepare_data
from cdtools.chips.export import export_training_data
from cdtools.chips.stats import NormStats
from cdtools.errors import CdtoolsWarning, ChipsFolderError, LabelError, ParameterError
from tests.conftest import Pair


@pytest.fixture
def chips(pair: Pair, tmp_path: Path) -> Path:
    return export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        tmp_path / "chips",
        chip_size=64,
        stride=32,
        progress=False,
    )


def test_batches_are_pairs_with_masks(chips: Path) -> None:
    dls = prepare_data(chips, chip_size=48, batch_size=4, val_split_pct=0.2)
    (before, after), mask = dls.one_batch()
    assert before.shape == after.shape == (4, 3, 48, 48)
    assert before.dtype == torch.float32 and mask.shape == (4, 48, 48)
    assert set(mask.unique().tolist()) <= {0, 1, 255}
    assert len(dls.train_ds) + len(dls.valid_ds) == 54 and len(dls.valid_ds) == 11
    assert dls.n_bands == 3 and dls.class_names == ("NoChange", "Change")


def test_same_seed_same_split_and_batches(chips: Path) -> None:
    runs = [prepare_data(chips, chip_size=48, batch_size=4, seed=7) for _ in range(2)]
    assert [c.before.name for c in runs[0].valid_ds.chips] == [
        c.before.name for c in runs[1].valid_ds.chips
    ]
    (b0, a0), m0 = runs[0].one_batch()
    (b1, a1), m1 = runs[1].one_batch()
    assert torch.equal(b0, b1) and torch.equal(a0, a1) and torch.equal(m0, m1)
    other = prepare_data(chips, chip_size=48, batch_size=4, seed=8)
    assert [c.before.name for c in other.valid_ds.chips] != [
        c.before.name for c in runs[0].valid_ds.chips
    ]


def test_dataset_statistics_are_those_of_the_training_chips(chips: Path) -> None:
    dls = prepare_data(chips, chip_size=64, batch_size=4)
    stacked = np.stack([np.concatenate(dls.train_ds.raw(i)[:2]) for i in range(len(dls.train_ds))])
    pixels = stacked.reshape(len(stacked), 2, 3, -1).transpose(2, 0, 1, 3).reshape(3, -1)
    np.testing.assert_allclose(dls.stats.mean, pixels.mean(1), atol=1e-3)
    np.testing.assert_allclose(dls.stats.std, pixels.std(1), atol=1e-3)


def test_augmentation_keeps_before_after_and_mask_aligned() -> None:
    # An asymmetric L: any flip or rotation of it is told apart from the others.
    pattern = np.zeros((40, 40), dtype=bool)
    pattern[5:35, 5:10] = True
    pattern[30:35, 5:25] = True
    before = np.where(pattern, 3.0, -3.0)[None].repeat(3, 0).astype(np.float32)
    after = -before
    mask = pattern.astype(np.uint8)
    seen = set()
    rng = np.random.default_rng(0)
    for _ in range(40):
        b, a, m = augment_pair(before, after, mask, 32, rng)
        assert b.shape == (3, 32, 32) and m.shape == (32, 32)
        np.testing.assert_array_equal(b[0] > 0, m == 1)
        np.testing.assert_array_equal(a[0] < 0, m == 1)
        assert not np.allclose(b + a, 0)  # jitter is drawn per date
        seen.add(m.tobytes())
    assert len(seen) > 8  # the draws differ


def test_geometry_only_moves_pixels_and_keeps_their_values() -> None:
    # Distinct values: a flip, turn and crop only rearranges them, for both dates alike.
    before = np.arange(3 * 40 * 40, dtype=np.float32).reshape(3, 40, 40)
    after = before + 0.5
    mask = (before[0] % 3 == 0).astype(np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(10):
        b, a, m = augment_pair(before, after, mask, 32, rng, jitter=False)
        assert np.isin(b, before).all()
        np.testing.assert_array_equal(a, b + 0.5)
        np.testing.assert_array_equal(m, (b[0] % 3 == 0).astype(np.uint8))
    b, a, _ = augment_pair(before, after, mask, 32, rng)  # the default jitters each date
    assert not np.isin(b, before).all() and not np.allclose(a, b + 0.5)


def test_warp_turns_and_scales_all_three_alike() -> None:
    # A bright square off the centre: wherever the warp takes it, the mask follows.
    before = np.full((3, 64, 64), -1.0, np.float32)
    before[:, 10:26, 14:30] = 1.0
    after = -before
    mask = (before[0] > 0).astype(np.uint8)
    rng = np.random.default_rng(1)
    brought_in = []
    for _ in range(10):
        b, a, m = augment_pair(before, after, mask, 64, rng, warp=True)
        # jitter keeps the square above 0.4 and the rest below -0.4 (in the after date,
        # the other way round); bilinear edges in between are not compared
        clear = (np.abs(b[0]) > 0.4) & (m != 255)
        assert ((b[0] > 0.4) == (m == 1))[clear].mean() > 0.97
        assert ((a[0] < -0.4) == (m == 1))[clear].mean() > 0.97
        assert 0.6 * mask.sum() < (m == 1).sum() < 1.6 * mask.sum()  # zoom 0.8-1.25
        brought_in.append((m == 255).any())
    assert sum(brought_in) >= 8  # turns not by quarters bring in ignored corners


def test_dataset_augments_in_training_only(chips: Path) -> None:
    dls = prepare_data(chips, chip_size=64, batch_size=4, norm="dataset")
    (b, _), m = dls.valid_ds[0]
    raw_b, _, raw_m = dls.valid_ds.raw(0)
    np.testing.assert_allclose(b.numpy(), dls.stats.normalise(raw_b), atol=1e-5)
    np.testing.assert_array_equal(m.numpy(), raw_m)
    warped = prepare_data(chips, chip_size=64, batch_size=4, transforms="warp", norm="dataset")
    assert warped.train_ds.augment == "warp" and warped.valid_ds.augment is None
    with pytest.raises(ParameterError, match="'default', 'warp', 'geometry' or None"):
        prepare_data(chips, chip_size=64, transforms="rotate")
    still = prepare_data(chips, chip_size=64, transforms="geometry", norm="dataset")
    (b, _), _ = still.train_ds[0]
    assert np.isin(b.numpy(), still.stats.normalise(still.train_ds.raw(0)[0])).all()
    plain = prepare_data(chips, chip_size=64, batch_size=4, transforms=None, norm="dataset")
    (b, _), _ = plain.train_ds[0]
    np.testing.assert_allclose(
        b.numpy(), plain.stats.normalise(plain.train_ds.raw(0)[0]), atol=1e-5
    )


def test_bands_and_norm_options(chips: Path) -> None:
    dls = prepare_data(chips, chip_size=32, batch_size=2, bands=[2, 0])
    (b, _), _ = dls.one_batch()
    assert b.shape[1] == 2 and dls.bands == (2, 0) and len(dls.stats.mean) == 2
    imagenet = prepare_data(chips, chip_size=32, batch_size=2, norm="imagenet")
    assert imagenet.stats.source == "imagenet"
    with pytest.raises(ParameterError, match=r"0-based indices in 0\.\.2"):
        prepare_data(chips, bands=[3])
    with pytest.raises(ParameterError, match="needs 3 uint8 bands"):
        prepare_data(chips, bands=[0, 1], norm="imagenet")
    with pytest.raises(ParameterError, match="statistics for 1 bands"):
        prepare_data(chips, norm=NormStats((1.0,), (1.0,)))


def test_show_batch_draws_before_after_mask(chips: Path) -> None:
    fig = prepare_data(chips, chip_size=48, batch_size=4).show_batch(rows=3)
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes[:3]] == ["before", "after", "change mask"]


def _rename(chips: Path, names: tuple[str, str, str]) -> Path:
    for old, new in zip(("images_before", "images_after", "labels"), names, strict=True):
        (chips / old).rename(chips / new)
    (chips / "export.json").unlink()
    return chips


def test_arcgis_images2_layout_with_0_1_labels(chips: Path) -> None:
    _rename(chips, ("images", "images2", "labels"))
    dls = prepare_data(chips, chip_size=64, batch_size=4)
    assert len(dls.train_ds) + len(dls.valid_ds) == 54
    ones = sum(int((dls.valid_ds[i][1] == 1).sum()) for i in range(len(dls.valid_ds)))
    ignored = sum(int((dls.valid_ds[i][1] == 255).sum()) for i in range(len(dls.valid_ds)))
    assert ones > 0 or ignored > 0


def test_levir_layout_with_split_folders_and_0_255_labels(pair: Pair, tmp_path: Path) -> None:
    root = tmp_path / "LEVIR-CD"
    for split in ("train", "val", "test"):
        export_training_data(
            pair.before,
            pair.after,
            pair.polygons,
            root / split,
            chip_size=64,
            stride=64,
            layout="levir",
            progress=False,
        )
        (root / split / "export.json").unlink()
    dls = prepare_data(root, chip_size=64, batch_size=2)
    assert len(dls.train_ds) == len(dls.valid_ds) == 5 * 4
    masks = [dls.valid_ds[i][1] for i in range(len(dls.valid_ds))]
    assert int(sum((m == 1).sum() for m in masks)) == 50 * 50  # 255 in 0/255 data is change
    assert all(set(m.unique().tolist()) <= {0, 1} for m in masks)


def test_missing_and_mismatched_chip_files(chips: Path) -> None:
    victim = sorted((chips / "images_after").iterdir())[3]
    victim.unlink()
    with pytest.raises(
        ChipsFolderError, match=rf"have no file in chips/images_after.*{victim.stem}"
    ):
        prepare_data(chips)
    shutil.copy(chips / "images_after" / "000000000.tif", victim)
    small = chips / "labels" / victim.name
    with rasterio.open(
        small, "w", driver="GTiff", count=1, height=8, width=8, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((1, 8, 8), dtype=np.uint8))
    with pytest.raises(ChipsFolderError, match=r"000000003\.tif does not match up"):
        prepare_data(chips)  # the statistics read every chip of this small set
    with pytest.raises(ChipsFolderError, match="not a chips folder"):
        prepare_data(chips / "labels")


def test_several_chip_folders_train_together(pair: Pair, tmp_path: Path) -> None:
    from tests.conftest import make_pair

    other = make_pair(tmp_path / "other", seed=1)
    first = export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        tmp_path / "a",
        chip_size=64,
        stride=64,
        progress=False,
    )
    second = export_training_data(
        other.before,
        other.after,
        other.mask,
        tmp_path / "b",
        chip_size=64,
        stride=64,
        layout="levir",
        progress=False,
    )
    dls = prepare_data([first, second], chip_size=64, batch_size=4, val_split_pct=0.25)
    assert len(dls.train_ds) + len(dls.valid_ds) == 2 * 20
    assert dls.sources == (first, second)
    change = [int((dls.valid_ds[i][1] == 1).sum()) for i in range(len(dls.valid_ds))]
    change += [int((dls.train_ds.raw(i)[2] == 1).sum()) for i in range(len(dls.train_ds))]
    assert sum(change) == 2 * 50 * 50  # 0/1 and 0/255 codings both read right


def test_check_labels_refuses_dense_labels_without_change_and_warns_on_sparse(
    pair: Pair, tmp_path: Path
) -> None:
    from cdtools.chips.folder import Chip
    from cdtools.chips.pairs import ChipPairs
    from cdtools.io.raster import write_geotiff

    def chips_of(labels: np.ndarray, name: str) -> tuple[ChipPairs, int]:
        # nodata=255: a raster of only 0 and 255 would otherwise read as 0/255 (255 = change)
        write_geotiff(
            tmp_path / f"{name}.tif", labels, transform=pair.transform, crs="EPSG:32614", nodata=255
        )
        out = export_training_data(
            pair.before,
            pair.after,
            tmp_path / f"{name}.tif",
            tmp_path / name,
            chip_size=64,
            stride=64,
            progress=False,
        )
        train = prepare_data(out, chip_size=64, val_split_pct=0.2, seed=0).train_ds
        labelled = sum(int((train.raw(i)[2] != 255).sum()) for i in range(len(train)))
        return train, labelled

    # Dense labels (every pixel 0 but the padding of edge chips): nothing to learn.
    dense, labelled = chips_of(np.zeros((300, 200), np.uint8), "dense")
    counts = rf"\({labelled:,} labelled pixels and 0 change pixels in the 16 of 16 training"
    with pytest.raises(LabelError, match=rf"hold no change {counts}"):
        dense.check_labels()
    with pytest.warns(CdtoolsWarning, match=r"hold no change .* in the 4 of 16 training chips"):
        dense.check_labels(limit=4)  # only a sample was read: it may be unlucky

    # Sparse samples, none of them change: a warning that says so, with the counts.
    sparse = np.full((300, 200), 255, np.uint8)
    for row in range(10, 300, 40):
        for col in range(10, 200, 40):
            sparse[row : row + 5, col : col + 5] = 0
    train, labelled = chips_of(sparse, "sparse")
    assert len(train) == 12 and labelled == 750  # the last column of chips holds no sample
    counts = rf"\({labelled:,} labelled pixels and 0 change pixels in the 12 of 12 training"
    with pytest.warns(CdtoolsWarning, match=rf"{counts}.*sparse.*F1 of change cannot be learnt"):
        train.check_labels()

    # No labelled pixel at all stays an error.
    write_geotiff(tmp_path / "none.tif", np.full((64, 64), 255, np.uint8))
    unlabelled = ChipPairs(
        [Chip(pair.before, pair.after, tmp_path / "none.tif")],
        stats=NormStats((0.0,) * 3, (1.0,) * 3),
        bands=None,
        chip_size=64,
        augment=None,
        seed=0,
    )
    with pytest.raises(LabelError, match=r"the 1 of 1 training chips checked have no labelled"):
        unlabelled.check_labels()
