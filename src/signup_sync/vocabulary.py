"""The fixed vocabulary of DESIGN.md: source types, event types and funnel stages."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class SourceType(StrEnum):
    EASYAPPOINTMENTS = "easyappointments"
    ZOOM = "zoom"
    EVENTBRITE = "eventbrite"
    POSHVIP = "poshvip"
    MANUAL = "manual"
    REFERRAL = "referral"
    DIRECT_SIGNUP = "direct_signup"


PULLED_SOURCE_TYPES: tuple[SourceType, ...] = (
    SourceType.EASYAPPOINTMENTS,
    SourceType.ZOOM,
    SourceType.EVENTBRITE,
    SourceType.POSHVIP,
)


class Stage(IntEnum):
    LEAD = 1
    ENGAGED = 2
    ATTENDED = 3
    SIGNUP_STARTED = 4
    SIGNED_UP = 5
    CONVERTED = 6

    @property
    def label(self) -> str:
        return self.name.lower()


class EventType(StrEnum):
    LEAD_CAPTURED = "lead_captured"
    REFERRAL_RECEIVED = "referral_received"
    APPOINTMENT_BOOKED = "appointment_booked"
    WEBINAR_REGISTERED = "webinar_registered"
    EVENT_REGISTERED = "event_registered"
    APPOINTMENT_COMPLETED = "appointment_completed"
    WEBINAR_ATTENDED = "webinar_attended"
    EVENT_ATTENDED = "event_attended"
    SIGNUP_STARTED = "signup_started"
    SIGNUP_COMPLETED = "signup_completed"
    CONVERTED = "converted"

    @property
    def stage(self) -> Stage:
        return STAGE_OF_EVENT[self]


STAGE_OF_EVENT: dict[EventType, Stage] = {
    EventType.LEAD_CAPTURED: Stage.LEAD,
    EventType.REFERRAL_RECEIVED: Stage.LEAD,
    EventType.APPOINTMENT_BOOKED: Stage.ENGAGED,
    EventType.WEBINAR_REGISTERED: Stage.ENGAGED,
    EventType.EVENT_REGISTERED: Stage.ENGAGED,
    EventType.APPOINTMENT_COMPLETED: Stage.ATTENDED,
    EventType.WEBINAR_ATTENDED: Stage.ATTENDED,
    EventType.EVENT_ATTENDED: Stage.ATTENDED,
    EventType.SIGNUP_STARTED: Stage.SIGNUP_STARTED,
    EventType.SIGNUP_COMPLETED: Stage.SIGNED_UP,
    EventType.CONVERTED: Stage.CONVERTED,
}
