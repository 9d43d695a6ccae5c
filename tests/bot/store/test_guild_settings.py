import pytest

from bot.store import GuildSettings, JobStore


async def test_a_server_without_settings_gets_the_defaults(store):
    assert await store.get_guild_settings(10) == GuildSettings(guild_id=10)


async def test_settings_are_updated_piecewise_and_persist(db_path, clock):
    async with JobStore.open(db_path, clock=clock) as store:
        first = await store.update_guild_settings(10, allowed_channel_ids=[5, 3, 5], default_model="medium")
        assert first.allowed_channel_ids == (3, 5)
        assert first.default_model == "medium"
        second = await store.update_guild_settings(
            10,
            enabled_models=("small", "medium", "small"),
            max_duration=60,
            max_takes=2,
            remix_by_reply=False,
            default_budget=120.5,
        )
        await store.set_role_tier(10, 77, 900)
    async with JobStore.open(db_path, clock=clock) as store:
        settings = await store.get_guild_settings(10)
        assert settings == GuildSettings(
            guild_id=10,
            allowed_channel_ids=(3, 5),
            default_model="medium",
            enabled_models=("small", "medium"),
            max_duration=60,
            max_takes=2,
            remix_by_reply=False,
            default_budget=120.5,
            role_tiers={77: 900.0},
        )
        assert second.default_budget == 120.5
        reset = await store.update_guild_settings(10, default_model=None, max_duration=None)
        assert reset.default_model is None
        assert reset.max_duration is None
        assert reset.max_takes == 2
        assert await store.get_guild_settings(11) == GuildSettings(guild_id=11)


async def test_unknown_settings_are_refused(store):
    with pytest.raises(TypeError, match="colour"):
        await store.update_guild_settings(10, colour="blue")
    with pytest.raises(TypeError):
        await store.update_guild_settings(10, role_tiers={1: 2})
    assert await store.get_guild_settings(10) == GuildSettings(guild_id=10)
