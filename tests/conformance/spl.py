"""A reader of the REMS documents as structured product labeling (SPL, HL7 v3 XML): each coded requirement
with who performs it, its coded interval (`pauseQuantity`), its text, and the timing written beside it in the
document's table."""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

V3 = "{urn:hl7-org:v3}"


@dataclass(frozen=True)
class Requirement:
    code: str  # an NCI thesaurus code, e.g. C128512 "Prescribe Limited Days' Supply"
    name: str
    stakeholders: tuple  # NCI codes of who performs it: C128538 prescriber, C128539 dispenser, C128541 patient
    pause: tuple | None  # (value, unit) of the coded interval, e.g. (4, "wk")
    text: str  # the requirement, as the document words it
    when: str  # the timing column of its table row ("During treatment; every 4 weeks after the first 4 weeks")


def _text(element):
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip()


def requirements(path):
    root = ET.parse(path).getroot()
    parent = {child: node for node in root.iter() for child in node}
    by_id = {element.get("ID"): element for element in root.iter() if element.get("ID")}

    def enclosing(element, tag):
        while element is not None and element.tag != V3 + tag:
            element = parent.get(element)
        return element

    found, when = [], ""
    for component in root.iter(V3 + "component"):
        requirement = component.find(V3 + "requirement")
        if requirement is None:
            continue
        code = requirement.find(V3 + "code")
        reference = code.find(f"{V3}originalText/{V3}reference")
        anchor = by_id.get(reference.get("value").lstrip("#")) if reference is not None else None
        text, row = "", None
        if anchor is not None:
            # an anchor may be an empty <content ID=.../> at the start of its cell: then the cell is the text
            text = _text(anchor) or _text(enclosing(anchor, "td"))
            row = enclosing(anchor, "tr")
        if row is not None:
            cells = [_text(cell) for cell in row if cell.tag in (V3 + "td", V3 + "th")]
            if len(cells) > 1 and cells[0]:
                when = cells[0]  # a row without its own timing continues the one above (a merged cell)
        pause = component.find(V3 + "pauseQuantity")
        found.append(Requirement(
            code=code.get("code"), name=code.get("displayName", ""),
            stakeholders=tuple(who.get("code") for stakeholder in requirement.iter(V3 + "stakeholder")
                               for who in stakeholder.iter(V3 + "code")),
            pause=(int(pause.get("value")), pause.get("unit")) if pause is not None else None,
            text=text, when=when,
        ))
    return found
