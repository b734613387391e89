import shutil

import pytest

from reidaug.data import Market1501, build_dataset
from reidaug.data.market1501 import parse_name
from reidaug.errors import UserError


def test_parse_name_survives_release_quirks():
    assert parse_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_name("-1_c4s6_022316_11.jpg.jpg") == (-1, 4)
    assert parse_name("1488_c5s3_071737_01.jpg.jpg") == (1488, 5)


@pytest.fixture()
def tiny_market(tmp_path, synth_root):
    """A Market-release layout built from a few embedded-dataset images, with quirks added."""
    rel = tmp_path / "Market-1501-v15.09.15"
    src = sorted((synth_root / "bounding_box_train").glob("*.jpg"))[:6]
    for split in ("bounding_box_train", "bounding_box_test", "query"):
        (rel / split).mkdir(parents=True)
        (rel / split / "Thumbs.db").write_bytes(b"\0")
    for f in src:
        shutil.copy(f, rel / "bounding_box_train" / f.name)
        shutil.copy(f, rel / "query" / f.name)
    shutil.copy(src[0], rel / "bounding_box_test" / "0000_c1s6_023071_04.jpg.jpg")
    shutil.copy(src[0], rel / "bounding_box_test" / "-1_c4s6_022316_11.jpg.jpg")
    shutil.copy(src[0], rel / "bounding_box_test" / "1488_c5s3_071737_01.jpg.jpg")
    shutil.copytree(synth_root / "annotations", tmp_path / "annotations")
    return tmp_path


def test_reader_relabels_and_keeps_torchreid_conventions(tiny_market):
    ds = Market1501(tiny_market)
    assert ds.image_dir.name == "Market-1501-v15.09.15"
    assert len(ds.train) == 6  # Thumbs.db ignored
    raw = sorted({it.raw_pid for it in ds.train})
    assert sorted({it.pid for it in ds.train}) == list(range(len(raw)))
    assert all(it.pid == raw.index(it.raw_pid) for it in ds.train)
    assert all(0 <= it.camid < 6 for it in ds.train)
    # gallery: junk -1 dropped, distractors 0 kept, .jpg.jpg parsed
    assert sorted(it.pid for it in ds.gallery) == [0, 1488]
    assert [it.pid for it in ds.gallery_junk] == [-1]
    assert {it.camid for it in ds.gallery} == {0, 4}


@pytest.mark.parametrize(
    "remove,message",
    [
        ("Market-1501-v15.09.15/query", "missing query folder: {root}/query"),
        (
            "annotations/market-pairs-test.csv",
            "missing annotation file: {root}/annotations/market-pairs-test.csv",
        ),
    ],
)
def test_check_before_run_names_what_is_missing(tmp_path, synth_root, remove, message):
    root = tmp_path / "m"
    shutil.copytree(synth_root, root)
    if remove.startswith("Market"):
        shutil.rmtree(root / "query")
        message = message.format(root=root)
    else:
        (root / "annotations" / "market-pairs-test.csv").unlink()
        message = message.format(root=root)
    with pytest.raises(UserError) as e:
        Market1501(root).check_before_run()
    assert str(e.value) == message


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(
        UserError, match='Unknown dataset "msmt"; expected one of: market1501, synthetic'
    ):
        build_dataset("msmt", "/nowhere")


@pytest.mark.realdata
def test_real_market_counts_and_every_annotated_name_exists(real_market):
    ds = Market1501(real_market)
    ds.check_before_run()
    assert (len(ds.train), ds.num_train_ids) == (12936, 751)
    assert len(ds.query) == 3368
    assert len(ds.gallery) + len(ds.gallery_junk) == 19732
    for split, items in (("train", ds.train), ("gallery", ds.items("gallery_all"))):
        names = {it.name for it in items}
        ann = ds.annotations(split)
        assert set(ann) == names
    gallery_names = {it.name for it in ds.items("gallery_all")}
    assert all(a in gallery_names and b in gallery_names for a, b in ds.test_pairs())
