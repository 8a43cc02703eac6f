"""A log directory read back as the TensorBoard server reads it: its data ingester's multiplexer and data provider,
and the HParams plugin's own request handlers (what the HPARAMS tab asks for)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing import data_ingester, data_provider, plugin_event_multiplexer
from tensorboard.context import RequestContext
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups


@dataclass
class Board:
    """A loaded log directory: the data provider and the HParams backend over it."""

    data: data_provider.MultiplexerDataProvider
    hparams: backend_context.Context

    def experiment(self) -> api_pb2.Experiment:
        """The HParams experiment, as GET /data/plugin/hparams/experiment answers it."""
        return get_experiment.Handler(RequestContext(), self.hparams, "", api_pb2.GetExperimentRequest()).run()

    def session_groups(self) -> list[api_pb2.SessionGroup]:
        """Every session group, of any status, as the HParams tab lists them."""
        request = api_pb2.ListSessionGroupsRequest(
            start_index=0,
            slice_size=1000,
            allowed_statuses=[
                api_pb2.STATUS_UNKNOWN,
                api_pb2.STATUS_SUCCESS,
                api_pb2.STATUS_FAILURE,
                api_pb2.STATUS_RUNNING,
            ],
        )
        return list(list_session_groups.Handler(RequestContext(), self.hparams, "", request).run().session_groups)

    def scalars(self, run: str, tag: str) -> list[tuple[int, float]]:
        """(step, value) of one scalar series, read through the data provider."""
        data = self.data.read_scalars(
            RequestContext(),
            experiment_id="",
            plugin_name="scalars",
            downsample=10_000,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        )
        return [(datum.step, datum.value) for datum in data.get(run, {}).get(tag, [])]

    def tags(self, plugin_name: str) -> dict[str, list[str]]:
        """run -> tags of one plugin (scalars, images, hparams)."""
        if plugin_name == "images":
            found = self.data.list_blob_sequences(RequestContext(), experiment_id="", plugin_name=plugin_name)
        else:
            found = self.data.list_scalars(RequestContext(), experiment_id="", plugin_name=plugin_name)
        return {run: sorted(tags) for run, tags in found.items()}


def load(logdir: Path) -> Board:
    """Load `logdir` as `tensorboard --logdir LOGDIR` does."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance=data_ingester.DEFAULT_SIZE_GUIDANCE,
        tensor_size_guidance=data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE,
    )
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    data = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=data, multiplexer=multiplexer)
    return Board(data, backend_context.Context(context))


def hparam_value(value: Any) -> Any:
    """A session's hparam value (google.protobuf.Value) as Python."""
    kind = value.WhichOneof("kind")
    return getattr(value, kind)
