"configs/miniature.yaml (the micro model behind 04b_grpo's recorded rollouts): its synthetic-world options reach the proxy source, and the validation split does not depend on the training split's size."
from pathlib import Path
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "miniature.yaml"

def test_validation_split_does_not_depend_on_n_train(tmp_path):
    "The validation split built alone (n_train 0) holds the rows of the full build's validation split."
    from locus.train import parse_config, proxy_data
    args = ["--config", str(CONFIG), "--model", "tiny", "--cache_dir", str(tmp_path), "--n_val", "6", "--synthetic_images", "40", "--max_pixels", "12544"]
    a = proxy_data(parse_config(args + ["--n_train", "0"])[0], progress=False)["validation"]
    b = proxy_data(parse_config(args + ["--n_train", "12"])[0], progress=False)["validation"]
    assert len(a) == 6 and [r["solution"] for r in a] == [r["solution"] for r in b] and [r["source"] for r in a] == [r["source"] for r in b]

def test_synthetic_world_options_reach_the_proxy_source(tmp_path):
    "The config's shapes and textures reach the proxy task's scenes; an unknown name is refused by name; unset options keep the default source."
    from locus.train import parse_config, proxy_source
    cfg = yaml.safe_load(CONFIG.read_text()); shapes = cfg["synthetic_shapes"].split(",")
    args = ["--config", str(CONFIG), "--model", "tiny", "--cache_dir", str(tmp_path)]
    src = proxy_source(parse_config(args)[0])
    assert src.identity()["shapes"] == shapes and src.identity()["textures"] == ["solid"]
    assert all(o.shape in shapes and o.texture == "solid" for i in range(5) for o in src.scene(i).objects)
    with pytest.raises(ValueError, match="synthetic_shapes: unknown \\['blob'\\]"): proxy_source(parse_config(args + ["--synthetic_shapes", "ring,blob"])[0])
    plain = proxy_source(parse_config(args + ["--synthetic_shapes", "", "--synthetic_textures", ""])[0])
    assert "shapes" not in plain.identity() and "textures" not in plain.identity()
