from delbind.training.selection import selection_facts


def test_selection_facts_count_saturated_and_tied_evaluations():
    history = [{"loss": 0.7, "step": 1}, {"eval_val_hard_auprc": 0.9, "step": 10}, {"eval_val_hard_auprc": 1.0},
               {"eval_val_easy_auprc": 1.0}, {"eval_val_hard_auprc": 1.0}, {"eval_val_hard_auprc": 0.95}]  # fmt: skip
    assert selection_facts(history, "eval_val_hard_auprc") == {
        "val_evals": 4, "val_saturated_evals": 2, "val_best_ties": 2,
    }  # fmt: skip
    unique = selection_facts(history[:3], "eval_val_hard_auprc")
    assert unique["val_best_ties"] == 1 and unique["val_saturated_evals"] == 1
    loss = selection_facts([{"eval_val_hard_loss": 0.3}, {"eval_val_hard_loss": 0.2}], "eval_val_hard_loss", False)
    assert loss == {"val_evals": 2, "val_saturated_evals": 0, "val_best_ties": 1}
    assert selection_facts([], "eval_val_hard_auprc")["val_evals"] == 0
