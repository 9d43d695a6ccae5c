from bot.engine.worker.lru import ModelLRU


def test_least_recently_used_model_leaves_first():
    evicted = []
    lru = ModelLRU(budget_gb=10, on_evict=lambda name, model: evicted.append((name, model)))
    lru.put("a", "model-a", 4)
    lru.put("b", "model-b", 4)
    assert lru.get("a") == "model-a"  # a is now the most recent
    assert lru.make_room(4) == ["b"]
    lru.put("c", "model-c", 4)
    assert lru.names == ("a", "c")
    assert evicted == [("b", "model-b")]
    assert lru.used_gb == 8


def test_a_model_larger_than_the_budget_empties_the_cache_but_keeps_what_is_in_use():
    lru = ModelLRU(budget_gb=5)
    lru.put("a", 1, 2)
    lru.put("b", 2, 2)
    assert lru.make_room(9, keep="b") == ["a"]
    assert lru.names == ("b",)
    assert lru.evict_all_but("b") == []
    assert lru.get("missing") is None
