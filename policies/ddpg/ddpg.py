"""DDPG (and TD3) on RLlib's new API stack: the config and the algorithm.

RLlib no longer ships DDPG or TD3. This follows SAC's structure, its closest relative: SAC's
config already carries actor/critic learning rates, Polyak ``tau``, ``n_step``, episode replay
buffers and the replay ratio (``training_intensity``), and its algorithm's training step is
DQN's (sample, add to replay, replay with n-step returns, update, write back TD-error
priorities, sync weights to the env runners). What differs is the module (a deterministic
tanh actor with exploration noise instead of a squashed Gaussian), the loss, and the TD3
improvements, which are flags here: ``DDPGConfig()`` is DDPG with all of them off and
``DDPGConfig.td3()`` turns them on (twin critics, delayed actor, target policy smoothing),
as Stable-Baselines3 treats DDPG as TD3 with its tricks off.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from policies.ddpg import rllib_compat as compat
from policies.ddpg.flat_replay_buffer import FLAT_REPLAY_BUFFER, FlatReplayBuffer
from policies.ddpg.options import check_options
from policies.ddpg.rllib_compat import SAC, SACConfig

DDPG_OPTION_KEYS = (
    *("actor_lr", "critic_lr", "tau", "gamma", "policy_delay", "n_step", "train_batch_size_per_learner"),
    *("embedding_dim", "meta_hidden", "workload_code_dim", "synthetic_contexts", "context_renewal"),
    *("num_steps_sampled_before_learning_starts", "target_noise", "target_noise_clip", "aux_loss_weight"),
    *("workload_loss_weight", "saturation_penalty", "training_intensity", "actor_hiddens", "critic_hiddens"),
    *("exploration", "num_steps_sampled_before_actor_learns", "bc_weight", "train_meta"),
)
"""Options whose values ``policies.ddpg.options.check_options`` rules on."""
REPLAY_STATE_KEY = "replay_buffer"
"""Where an algorithm checkpoint's own state keeps the replay buffer (``replay_in_checkpoints``)."""


class DDPGConfig(SACConfig):
    """Configuration of DDPG/TD3. Defaults are DDPG's; see ``td3()`` for the TD3 preset."""

    def __init__(self, algo_class: type | None = None):
        super().__init__(algo_class=algo_class or DDPG)
        self.twin_q = False
        """Twin critics, the target taking the smaller (TD3's clipped double Q)."""
        self.policy_delay = 1
        """Update the actor once every this many critic updates (TD3: 2)."""
        self.num_steps_sampled_before_actor_learns = 0
        """Env steps sampled (over the run's life) before the actor's first update; until then only
        the critics and the meta-learner learn. For fine-tuning (``run.init_from``) from an
        exported policy, whose critics start fresh: a fresh critic's gradient first pulls the
        actor away from what it knew, and a warm-up lets the critics learn to value that actor
        first (the same reason RLlib's ``num_steps_sampled_before_learning_starts`` waits for data).
        Measured behind the deployment's rules, a warm-up alone did not keep the actor from
        drifting once it moved (docs/results/2026-12-06-burst-rule-and-critic-warmup.md)."""
        self.train_meta = True
        """Whether the meta-learner learns (through the critic's loss and its own heads). False keeps
        the loaded meta-learner as it is: for fine-tuning an exported policy, whose actor reads the
        embedding; with a fresh critic training it, the embedding moves under the actor (measured:
        the loaded actor alone, never stepped, fell from +0.51 at iteration 2 to +0.11 at
        iteration 6 on validation as the meta-learner trained)."""
        self.bc_weight = 0.0
        """TD3+BC for the whole run: the actor's loss is -Q over mean |Q| plus this times the mean
        square distance to the replayed actions (``BC_MODES``' "online"). For fine-tuning: the replay
        holds the loaded actor's own asks, so the term anchors the actor to what it knew while the
        critic's gradient moves it (a fresh critic carried it far, in plain and warmed-up
        fine-tunes; the anchor slowed that drift without stopping it, same results page). 0: plain
        DDPG. Bootstrapping sets the weight per phase instead."""
        self.target_noise = 0.0
        """Std of Gaussian noise on the target actor's action (TD3's target smoothing: 0.2)."""
        self.target_noise_clip = 0.5
        """Clip of that noise."""
        self.exploration = {"type": "gaussian", "sigma": 0.2, "final_sigma": 0.05, "decay_steps": 50_000}
        """Exploration noise: type ('gaussian' or 'ou'), sigma, final_sigma, decay_steps, ou_theta."""
        self.saturation_penalty = 0.0
        """Weight of the mean square of the actor's pre-tanh outputs in its loss
        (``saturation_loss``): keeps the tanh off its flat ends, where the actor stops learning.
        0: off."""
        self.actor_hiddens = [256, 256]
        """Hidden layer sizes of the actor (per service when the observation has a layout)."""
        self.critic_hiddens = [256, 256]
        """Hidden layer sizes of the critic."""
        self.layout: dict[str, Any] | None = None
        """How to cut the autoscaling observation (see networks.ObsSplit); None: flat MLPs."""
        self.embedding_dim = 16
        """Size of the meta-learner's workload embedding."""
        self.meta_hidden = 64
        """GRU width of the meta-learner."""
        self.aux_loss_weight = 0.5
        """Weight of the meta-learner's next-interval prediction loss."""
        self.workload_loss_weight = 0.0
        """Weight of the meta-learner's workload-identification loss (cross-entropy of which
        training workload a replayed step came from, read from the workload code; needs a load
        context (``layout['n_context']``), ``layout['n_workloads']`` > 0 and a replay buffer that
        keeps the env's infos: FlatReplayBuffer or EpisodeReplayBuffer). 0: off."""
        self.workload_code_dim = 16
        """Size of the workload code the meta-learner reads from the long load context."""
        self.synthetic_contexts = 0
        """Contexts of fresh workload instances added to each update's workload loss (needs the
        env's load context; see ``context_pool``). 0: replayed steps only."""
        self.context_renewal = 2
        """Workload instances renewed in the context pool per update."""
        self.actor_lr = 1e-3
        self.critic_lr = 1e-3
        self.tau = 5e-3
        self.gamma = 0.98
        self.n_step = 1
        self.replay_buffer_config = {"type": FLAT_REPLAY_BUFFER, "capacity": 200_000}
        """``FlatReplayBuffer`` (n-step transitions in flat arrays, see flat_replay_buffer.py), or
        one of RLlib's episode buffers (``EpisodeReplayBuffer``, ``PrioritizedEpisodeReplayBuffer``)."""
        self.num_steps_sampled_before_learning_starts = 1000
        self.training_intensity = None
        self.train_batch_size_per_learner = 256
        self.replay_in_checkpoints = False
        """Save the replay buffer in algorithm checkpoints (FlatReplayBuffer), so a resumed run
        continues with the same data; off by default, as a full buffer of default.yaml's
        observations is about 1.2 GB."""
        self.bootstrap: dict[str, Any] | None = None
        """Bootstrapping (see policies.bootstrap.BootstrapConfig); None trains DDPG from scratch."""

    @staticmethod
    def td3() -> DDPGConfig:
        """The TD3 preset: twin critics, actor updated every second step, target smoothing."""
        return DDPGConfig().training(twin_q=True, policy_delay=2, target_noise=0.2, target_noise_clip=0.5)

    @override(SACConfig)
    def training(
        self,
        *,
        policy_delay: int | None = NotProvided,
        num_steps_sampled_before_actor_learns: int | None = NotProvided,
        bc_weight: float | None = NotProvided,
        train_meta: bool | None = NotProvided,
        target_noise: float | None = NotProvided,
        target_noise_clip: float | None = NotProvided,
        exploration: dict[str, Any] | None = NotProvided,
        actor_hiddens: list[int] | None = NotProvided,
        critic_hiddens: list[int] | None = NotProvided,
        layout: dict[str, Any] | None = NotProvided,
        embedding_dim: int | None = NotProvided,
        meta_hidden: int | None = NotProvided,
        aux_loss_weight: float | None = NotProvided,
        workload_loss_weight: float | None = NotProvided,
        workload_code_dim: int | None = NotProvided,
        synthetic_contexts: int | None = NotProvided,
        context_renewal: int | None = NotProvided,
        saturation_penalty: float | None = NotProvided,
        replay_in_checkpoints: bool | None = NotProvided,
        bootstrap: dict[str, Any] | None = NotProvided,
        **kwargs: Any,
    ) -> DDPGConfig:
        """Set DDPG's own options (and any of SAC's/DQN's: twin_q, tau, n_step, actor_lr, ...)."""
        super().training(**kwargs)
        for name, value in (
            ("policy_delay", policy_delay),
            ("num_steps_sampled_before_actor_learns", num_steps_sampled_before_actor_learns),
            ("bc_weight", bc_weight),
            ("train_meta", train_meta),
            ("target_noise", target_noise),
            ("target_noise_clip", target_noise_clip),
            ("actor_hiddens", actor_hiddens),
            ("critic_hiddens", critic_hiddens),
            ("layout", layout),
            ("embedding_dim", embedding_dim),
            ("meta_hidden", meta_hidden),
            ("aux_loss_weight", aux_loss_weight),
            ("workload_loss_weight", workload_loss_weight),
            ("workload_code_dim", workload_code_dim),
            ("synthetic_contexts", synthetic_contexts),
            ("context_renewal", context_renewal),
            ("saturation_penalty", saturation_penalty),
            ("replay_in_checkpoints", replay_in_checkpoints),
            ("bootstrap", bootstrap),
        ):
            if value is not NotProvided:
                setattr(self, name, value)
        if exploration is not NotProvided:
            self.exploration = {**self.exploration, **(exploration or {})}
        return self

    @override(SACConfig)
    def validate(self) -> None:
        check_options({key: getattr(self, key) for key in DDPG_OPTION_KEYS})
        compat.sac_validate(self)
        if self.replay_buffer_config.get("type") == FLAT_REPLAY_BUFFER and not (
            isinstance(self.n_step, int) and not isinstance(self.n_step, bool) and self.n_step >= 1
        ):
            raise ValueError(f"n_step: the flat replay buffer needs one integer >= 1, got {self.n_step!r}")
        if self.synthetic_contexts > 0 and not (
            self.workload_loss_weight > 0 and (self.layout or {}).get("n_context") and self.env_config.get("workloads")
        ):
            raise ValueError(
                "synthetic_contexts: needs workload_loss_weight > 0, an env with a load context and its workloads"
            )
        if self.workload_loss_weight > 0:
            if not ((self.layout or {}).get("n_workloads") and (self.layout or {}).get("n_context")):
                raise ValueError(
                    "workload_loss_weight: needs layout['n_workloads'] > 0 and a load context (layout['n_context'])"
                )
            if "Prioritized" in str(self.replay_buffer_config.get("type", "")):
                raise ValueError(
                    "workload_loss_weight: needs the env's infos in replayed steps, which RLlib's"
                    " PrioritizedEpisodeReplayBuffer drops; use EpisodeReplayBuffer"
                )
        if self.bootstrap is not None and self.bc_weight > 0:
            raise ValueError("bc_weight: bootstrapping sets the cloning weight per phase (bootstrap.online_bc_weight)")
        if self.bootstrap is not None:
            from policies.bootstrap.config import BootstrapConfig
            from policies.bootstrap.driver import EpisodeReports

            BootstrapConfig.from_dict(self.bootstrap)
            classes = self.callbacks_class if isinstance(self.callbacks_class, list | tuple) else [self.callbacks_class]
            if not any(isinstance(c, type) and issubclass(c, EpisodeReports) for c in classes):
                raise ValueError("bootstrap: the callbacks must include policies.bootstrap.driver.EpisodeReports")
        if self.layout is not None:
            missing = {"max_services", "n_service_features", "n_app_features", "mask_index"} - set(self.layout)
            if missing:
                raise ValueError(f"layout: missing keys {sorted(missing)}")

    @override(SACConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from policies.ddpg.torch.ddpg_torch_rl_module import DDPGTorchRLModule

        return RLModuleSpec(module_class=DDPGTorchRLModule)

    @override(SACConfig)
    def get_default_learner_class(self) -> type:
        from policies.ddpg.torch.ddpg_torch_learner import DDPGTorchLearner

        return DDPGTorchLearner

    @override(AlgorithmConfig)
    def build_module_to_env_connector(self, env=None, spaces=None) -> Any:
        pipeline = super().build_module_to_env_connector(env, spaces)
        if self.bootstrap is not None:
            from ray.rllib.connectors.module_to_env import NormalizeAndClipActions

            from policies.bootstrap.connector import BootstrapActions

            piece = BootstrapActions(env_config=dict(self.env_config), bootstrap=dict(self.bootstrap))
            if self.add_default_connectors_to_module_to_env_pipeline:
                pipeline.insert_before(NormalizeAndClipActions, piece)
            else:
                pipeline.append(piece)
        return pipeline

    @override(AlgorithmConfig)
    def build_learner_connector(self, input_observation_space, input_action_space, device=None) -> Any:
        pipeline = super().build_learner_connector(input_observation_space, input_action_space, device)
        if self.workload_loss_weight > 0:
            from ray.rllib.connectors.learner import AddColumnsFromEpisodesToTrainBatch

            from policies.ddpg.workload_labels import AddWorkloadLabels

            if self.add_default_connectors_to_learner_pipeline:
                pipeline.insert_after(AddColumnsFromEpisodesToTrainBatch, AddWorkloadLabels())
            else:
                pipeline.append(AddWorkloadLabels())
        return pipeline

    def ddpg_model_config(self) -> dict[str, Any]:
        """What DDPG's RLModule reads from this config (added to every module's model config)."""
        return {
            "twin_q": self.twin_q,
            "target_noise": self.target_noise,
            "target_noise_clip": self.target_noise_clip,
            "exploration": dict(self.exploration),
            "actor_hiddens": list(self.actor_hiddens),
            "critic_hiddens": list(self.critic_hiddens),
            "layout": self.layout,
            "embedding_dim": self.embedding_dim,
            "meta_hidden": self.meta_hidden,
            "workload_code_dim": self.workload_code_dim,
        }


compat.extend_model_config(DDPGConfig, DDPGConfig.ddpg_model_config)


class DDPG(SAC):
    """DDPG/TD3: SAC's (that is DQN's) training step with DDPG's module and learner.

    With ``config.bootstrap`` set, a ``BootstrapDriver`` runs AWARE's lifecycle around that
    step: it sets the phase on env runners and learners before it, trains (OFFLINE, ONLINE) or
    only fills the replay buffer (SERVING, the policy frozen), and moves the lifecycle after it.
    """

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> DDPGConfig:
        return DDPGConfig()

    @override(SAC)
    def setup(self, config: AlgorithmConfig) -> None:
        super().setup(config)
        self.bootstrap = None
        if getattr(self.config, "bootstrap", None) is not None:
            from policies.bootstrap.config import BootstrapConfig
            from policies.bootstrap.driver import BootstrapDriver

            self.bootstrap = BootstrapDriver(BootstrapConfig.from_dict(self.config.bootstrap))

    @override(SAC)
    def training_step(self) -> None:
        self._sync_exploration()
        if self.bootstrap is None:
            return self._learning_step()
        from ray.rllib.core import DEFAULT_MODULE_ID
        from ray.rllib.utils.metrics import LEARNER_RESULTS

        from policies.bootstrap.driver import RESULTS_KEY
        from policies.ddpg.ddpg_learner import BC_LOSS_KEY

        self.bootstrap.push(self)
        if self.bootstrap.phase.learning:
            self._learning_step()
        else:
            self._sample_into_replay()
        try:
            bc = self.metrics.peek((LEARNER_RESULTS, DEFAULT_MODULE_ID, BC_LOSS_KEY))
        except KeyError:  # no update yet (learning has not started)
            bc = None
        self.bootstrap.after_iteration(self, None if bc is None else float(bc))
        for key, value in self.bootstrap.results().items():
            self.metrics.log_value((RESULTS_KEY, key), value, window=1)
        return None

    @override(SAC)
    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if components is None and self.config.replay_in_checkpoints and self.local_replay_buffer is not None:
            state[REPLAY_STATE_KEY] = self.local_replay_buffer.get_state()
        return state

    @override(SAC)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if REPLAY_STATE_KEY in state and self.local_replay_buffer is not None:
            self.local_replay_buffer.set_state(state[REPLAY_STATE_KEY])

    def _learning_step(self) -> None:
        """DQN's training step (through SAC) with RLlib's episode buffers; with the flat buffer,
        the same loop fed by transition batches: sample, add, ``training_intensity``-many
        updates, weight sync."""
        if not isinstance(self.local_replay_buffer, FlatReplayBuffer):
            return super().training_step()
        from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
        from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
        from ray.rllib.utils.metrics import (
            ENV_RUNNER_RESULTS,
            LEARNER_RESULTS,
            LEARNER_UPDATE_TIMER,
            NUM_AGENT_STEPS_SAMPLED_LIFETIME,
            NUM_ENV_STEPS_SAMPLED_LIFETIME,
            REPLAY_BUFFER_SAMPLE_TIMER,
            SYNCH_WORKER_WEIGHTS_TIMER,
            TD_ERROR_KEY,
            TIMERS,
        )

        store, train = compat.calculate_rr_weights(self.config)
        for _ in range(store):
            self._sample_into_replay()
        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        if sampled < self.config.num_steps_sampled_before_learning_starts:
            return None
        size = self.config.total_train_batch_size
        results = None
        for _ in range(train):
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
                batch = self.local_replay_buffer.sample(num_items=size)
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                results = self.learner_group.update(
                    batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(batch)}, env_steps=size),
                    timesteps={
                        NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled,
                        NUM_AGENT_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                            (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}
                        ),
                    },
                )
            for res in results:  # uniform replay: no priorities to write back
                for module_results in res.values():
                    if isinstance(module_results, dict):
                        module_results.pop(TD_ERROR_KEY, None)
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=set(results[0].keys()) - {ALL_MODULES} if results else None,
                inference_only=True,
            )
        return None

    def _sync_exploration(self) -> None:
        """Set every env runner's noise schedule from the run's lifetime env steps.

        Each runner's module copy counts the actions it sampled, and that count is not part of a
        checkpoint: a resumed run or a restarted env runner would explore at full sigma again.
        The lifetime count is (it is the algorithm's own metric), so each iteration starts every
        runner at its share of it; within the iteration the runners count on as before.
        """
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

        sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        steps = int(sampled) // max(1, self.config.num_env_runners)
        sigmas = self.env_runner_group.foreach_env_runner(
            lambda runner: _set_noise_steps(runner, steps), local_env_runner=True
        )
        sigma = next((x for x in sigmas if x is not None), None)
        if sigma is not None:
            self.metrics.log_value(EXPLORATION_SIGMA, sigma, window=1)

    def _sample_into_replay(self) -> None:
        """Sample from the env runners and keep the data in the replay buffer."""
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, ENV_RUNNER_SAMPLING_TIMER, TIMERS

        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_results = compat.sample_episodes(self)
        self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        self.local_replay_buffer.add(episodes)


EXPLORATION_SIGMA = "exploration_sigma"
"""Result key: the exploration noise's sigma at the start of the iteration."""


def _set_noise_steps(runner: Any, steps: int) -> float | None:
    """On an env runner: its module's noise schedule at `steps`; the sigma there (None: no noise)."""
    noise = getattr(getattr(runner, "module", None), "noise", None)
    if noise is None:
        return None
    noise.steps = steps
    return float(noise.scale())


def _make_replay_buffer(algo: DDPG, config: Any) -> FlatReplayBuffer | None:
    """The flat buffer where the config asks for it (None: RLlib builds its own)."""
    rb = dict(config.replay_buffer_config or {})
    if rb.get("type") != FLAT_REPLAY_BUFFER:
        return None
    rb.pop("type")
    return FlatReplayBuffer(
        int(rb.pop("capacity", 200_000)), n_step=config.n_step, gamma=config.gamma, seed=config.seed, **rb
    )


compat.override_replay_buffer_factory(DDPG, _make_replay_buffer)
