"""ANNalog's encoder as a trunk: the converted model against the checkpoint's own code, its tokenizer against the
package's, what it does not have (a masked-LM form), and molecules it sees only in part."""

import importlib
import io
import pickle
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from delbind.assets import ANNALOG, fetch_wheel
from delbind.errors import AssetError, ModelLoadError
from delbind.models.annalog import MAX_POSITIONS, annalog_model_dir, read_vocabulary
from delbind.models.loading import load_tokenizer_and_model, resolve_name_or_path
from delbind.models.mlm import build_masked_lm, mlm_loss
from delbind.models.tokenizers import coverage
from tests.helpers import SMILES, compose_cfg, tiny, tiny_tokenizer

REAL = [  # drug-like, DEL-like and awkward SMILES: stereo, charges, two-digit rings, Br / Cl, a token it lacks (Si)
    "CC(=O)Nc1ccc(O)cc1",
    "O=C(N[C@@H](Cc1ccccc1)C(=O)O)c1ccc(Br)cc1Cl",
    "C[N+](C)(C)CC(=O)[O-]",
    "c1ccc2c(c1)CC%10CCCCCCCCC%10C2",
    "C[Si](C)(C)OCC#N",
    "CC1=C(C(=O)Nc2ccc(F)cc2)[C@H](c2ccco2)C(C#N)=C(N)O1",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The wheel's own tokenizer and encoder code (annalog/model_files), imported from a copy as package
    ``annalog_ref`` (the real package's __init__ pulls RDKit extras, so it is not imported)."""
    root = tmp_path_factory.mktemp("annalog_ref")
    package = root / "annalog_ref" / "model_files"
    package.mkdir(parents=True)
    (root / "annalog_ref" / "__init__.py").write_text("")
    with zipfile.ZipFile(fetch_wheel(ANNALOG)) as zf:
        for name in ("__init__.py", "vocabulary.py", "seq2seq_attention.py"):
            (package / name).write_bytes(zf.read(f"annalog/model_files/{name}"))
        checkpoint = torch.load(
            io.BytesIO(zf.read("annalog/ckpt_and_vocab/Lev_extended.pt")),
            map_location="cpu",
            weights_only=True,
        )
        vocab = pickle.loads(zf.read("annalog/ckpt_and_vocab/stereo_experiment_vocab_ttf.pkl"))  # test-only
    sys.path.insert(0, str(root))
    try:
        s2s = importlib.import_module("annalog_ref.model_files.seq2seq_attention")
        tokenizer = importlib.import_module("annalog_ref.model_files.vocabulary").SMILESTokenizer()
    finally:
        sys.path.remove(str(root))
    encoder = s2s.Encoder(len(vocab["itos"]), 256, 3, 8, 512, 0.1, "cpu", MAX_POSITIONS)
    encoder.load_state_dict({k.removeprefix("encoder."): v for k, v in checkpoint.items() if k.startswith("encoder.")})
    return encoder.eval(), tokenizer, vocab


def test_tokenizer_reads_smiles_as_annalog_does(reference):
    _, theirs, vocab = reference
    ours = AutoTokenizer.from_pretrained(annalog_model_dir())
    assert ours.get_vocab() == vocab["stoi"] and len(ours) == 59
    for token, i in vocab["stoi"].items():  # every token of the vocabulary is read back as itself
        if token not in ("<unk>", "<pad>", "<sos>", "<eos>"):
            assert ours(token)["input_ids"] == [vocab["stoi"]["<sos>"], i, vocab["stoi"]["<eos>"]], token
    for smiles in REAL:
        expected = [t if t in vocab["stoi"] else "<unk>" for t in ["<sos>", *theirs.tokenize(smiles), "<eos>"]]
        assert ours.convert_ids_to_tokens(ours(smiles)["input_ids"]) == expected, smiles
    assert "<unk>" in ours.convert_ids_to_tokens(ours("C[Si](C)(C)OCC#N")["input_ids"])


def test_converted_encoder_computes_what_the_checkpoint_computes(reference):
    encoder, _, _ = reference
    tokenizer = AutoTokenizer.from_pretrained(annalog_model_dir())
    model = AutoModel.from_pretrained(annalog_model_dir()).eval()
    assert type(model).__name__ == "AnnalogEncoder" and model.num_parameters() == 1_622_528  # the 1.62M
    batch = tokenizer(REAL, padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        theirs = encoder(batch["input_ids"], real[:, None, None, :])
        ours = model(**batch).last_hidden_state
    assert torch.allclose(ours[real], theirs[real], atol=1e-5)
    assert model.embed_positions.weight.requires_grad  # learned positions, trained as ANNalog trained them


def test_builtin_annalog_loads_as_a_classifier_trunk():
    cfg = compose_cfg(Path("/nonexistent/run"), ["model=annalog"]).model
    tokenizer, model = load_tokenizer_and_model(cfg)
    assert model.trunk.config.model_type == "annalog_encoder" and model.config.pooling == "mean"
    assert tokenizer.model_max_length == MAX_POSITIONS == model.trunk.config.max_position_embeddings
    assert resolve_name_or_path("builtin:annalog") == str(annalog_model_dir())
    with pytest.raises(ModelLoadError, match="builtin:rxnfp_bert, builtin:annalog"):
        resolve_name_or_path("builtin:chemberta")


def test_a_vocabulary_pickle_that_names_a_class_is_refused_not_run():
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    with pytest.raises(AssetError, match="holds data only"):
        read_vocabulary(pickle.dumps({"itos": [Payload()], "stoi": {}}))
    with pytest.raises(AssetError, match="special token"):
        read_vocabulary(pickle.dumps({"itos": ["a", "b"], "stoi": {"a": 0, "b": 1}}))


def test_a_trunk_without_a_masked_lm_form_has_no_mlm_loss_and_pretraining_refuses_it():
    _, model = tiny(model="tiny_annalog")
    assert mlm_loss(model.trunk, tiny_tokenizer(), SMILES, mlm_source=None) is None
    with pytest.raises(ModelLoadError, match="annalog_encoder trunk has no masked-LM form"):
        build_masked_lm(model.trunk, None)


def test_molecules_longer_than_the_trunk_reads_or_with_unknown_tokens_are_counted(caplog):
    tokenizer = tiny_tokenizer()
    df = pd.DataFrame(
        {"smiles": ["CCO", "C" * 30, "C[Xe]C", "CC" * 20 + "[Xe]"], "split": ["train", "train", "test", "test"]}
    )
    with caplog.at_level("WARNING"):
        counts = coverage(df, tokenizer, max_length=12)  # [CLS] + 10 tokens + [SEP]
    assert counts == {"molecules_truncated": 2, "molecules_with_unknown_tokens": 2}
    assert "2 of 4 molecules longer than 12 tokens (cut): {'train': 1, 'test': 1}" in caplog.text
    assert coverage(df.iloc[:1], tokenizer, max_length=12) == {"molecules_truncated": 0,
                                                              "molecules_with_unknown_tokens": 0}  # fmt: skip


def test_a_slow_tokenizer_is_counted_the_same_way():
    """A hub model's own (slow, remote-code) tokenizer has no Rust backend: the counts come from calling it."""

    class Slow:
        unk_token_id = tiny_tokenizer().unk_token_id

        def __call__(self, smiles):
            return tiny_tokenizer()(smiles)

    df = pd.DataFrame({"smiles": ["CCO", "C" * 30, "C[Xe]C"], "split": ["train", "train", "test"]})
    assert coverage(df, Slow(), max_length=12) == coverage(df, tiny_tokenizer(), max_length=12)
    assert coverage(df, Slow(), max_length=12) == {"molecules_truncated": 1, "molecules_with_unknown_tokens": 1}
