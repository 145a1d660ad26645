import numpy as np
import pandas as pd
import pytest

from shoprec.artifact import ArtifactError, load_model, save_model
from shoprec.models import make_model
from shoprec.models.cooccurrence import item_similarity


@pytest.fixture
def tiny():
    return pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 3], "item_id": [10, 20, 10, 30, 10], "weight": [1.0, 1, 1, 5, 1]}
    )


def test_popularity_ranks_by_total_weight_and_excludes_seen(tiny):
    model = make_model("popularity").fit(tiny)
    recs = model.recommend([3], k=2)
    assert recs["item_id"].tolist() == [30, 20]
    assert recs["rank"].tolist() == [1, 2]
    assert not recs["fallback"].any()


def test_cooccurrence_recommends_what_similar_users_had(tiny):
    model = make_model("cooccurrence", similarity="cooccurrence").fit(tiny)
    recs = model.recommend([3], k=2)
    assert set(recs["item_id"]) == {20, 30}
    assert recs["score"].is_monotonic_decreasing
    ids, scores = model.similar_items([20], k=1)
    assert ids.tolist() == [[10]] and scores[0, 0] > 0


def test_exclude_seen_can_be_turned_off(tiny):
    model = make_model("popularity").fit(tiny)
    assert model.recommend([2], k=1, exclude_seen=False)["item_id"].tolist() == [30]
    assert model.recommend([2], k=1)["item_id"].tolist() == [20]


def test_lists_are_short_when_few_items_are_left(tiny):
    recs = make_model("cooccurrence").fit(tiny).recommend([1], k=10)
    assert recs["item_id"].tolist() == [30]


@pytest.mark.parametrize("similarity", ["jaccard", "cosine", "lift", "cooccurrence"])
def test_similarities_are_symmetric_with_empty_diagonal(smoke_split, similarity):
    train = smoke_split[0]
    matrix = pd.crosstab(train["user_id"], train["item_id"]).clip(upper=1)
    import scipy.sparse as sp

    similarity_matrix = item_similarity(sp.csr_matrix(matrix.to_numpy(dtype=float)), similarity)
    assert abs(similarity_matrix - similarity_matrix.T).max() < 1e-12
    assert similarity_matrix.diagonal().sum() == 0


def test_cooccurrence_learns_the_true_preferences(smoke_data, cooccurrence_model):
    users = cooccurrence_model.user_ids_[:100]
    recs = cooccurrence_model.recommend(users, k=10, exclude_seen=False)
    truth = smoke_data.shop.true_top_items(users, 30)
    hits = [
        item in set(truth[i])
        for i, user in enumerate(users)
        for item in recs[recs.user_id == user].item_id
    ]
    assert np.mean(hits) > 3 * 30 / len(smoke_data.items)


def test_unknown_algorithm_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown algorithm 'deep'; expected one of"):
        make_model("deep")


def test_fit_needs_user_and_item_columns():
    with pytest.raises(ValueError, match=r"missing columns \['item_id'\]"):
        make_model("popularity").fit(pd.DataFrame({"user_id": [1]}))


def test_tampered_artifact_is_refused(tmp_path, popularity_model):
    directory = save_model(popularity_model, tmp_path / "model")
    with (directory / "arrays.npz").open("ab") as stream:
        stream.write(b"tamper")
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        load_model(directory)


def test_truncated_or_missing_artifact_files_are_named(tmp_path, popularity_model):
    directory = save_model(popularity_model, tmp_path / "model")
    (directory / "arrays.npz").unlink()
    with pytest.raises(ArtifactError, match="arrays.npz: listed in model.json but missing"):
        load_model(directory)
    with pytest.raises(ArtifactError, match="model.json: not found"):
        load_model(tmp_path / "nowhere")


def test_artifact_with_unknown_algorithm_is_refused(tmp_path, popularity_model):
    directory = save_model(popularity_model, tmp_path / "model")
    record = (directory / "model.json").read_text().replace('"popularity"', '"pickled-surprise"')
    (directory / "model.json").write_text(record)
    with pytest.raises(ArtifactError, match="field 'algorithm'"):
        load_model(directory)
