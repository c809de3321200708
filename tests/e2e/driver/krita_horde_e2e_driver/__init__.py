"""Test-only Krita plug-in: plays the artist in the real Krita, through the krita-horde docker.

It is installed beside the real plug-in by tests/e2e/krita_session.py, reads its scenario from the
JSON file named by KRITA_HORDE_E2E_CONFIG, writes a JSON report and quits Krita. An uncaught
exception writes its traceback and ends Krita at once (exit 3): Krita's script-error window would
otherwise block quitting.
"""

import os
import sys
import traceback

from krita import Extension, Krita


def _die_on_exception(kind, value, tb):
    path = os.environ.get("KRITA_HORDE_E2E_CRASH", "/tmp/krita_horde_e2e_crash.txt")
    with open(path, "w", encoding="utf-8") as crash:
        crash.write("".join(traceback.format_exception(kind, value, tb)))
    os._exit(3)


class _DriverExtension(Extension):
    def setup(self):
        if not os.environ.get("KRITA_HORDE_E2E_CONFIG"):
            return  # installed by mistake in a normal Krita: do nothing
        sys.excepthook = _die_on_exception
        import json

        config_path = os.environ["KRITA_HORDE_E2E_CONFIG"]
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        if config.get("features"):  # the docker's all-day features (test_krita_features.py)
            from .features import FeatureScenario

            self.scenario = FeatureScenario(config_path)
        elif config.get("colour_spaces"):  # CMYK/Lab documents (test_krita_colour_spaces.py)
            from .colour_spaces import ColourSpaceScenario

            self.scenario = ColourSpaceScenario(config_path)
        else:
            from .scenario import Scenario

            self.scenario = Scenario(config_path)
        self.scenario.start()

    def createActions(self, window):
        pass


Krita.instance().addExtension(_DriverExtension(Krita.instance()))
