"""Import the tables of nominations, annual cycles, registers and the annual clock's feeds."""

from workflows.annual_clock.models import CalendarFeed
from workflows.cycle.models import (
    AnnualReport,
    CycleReport,
    CycleSchedule,
    Measure,
    MeasureNote,
    NetworkMember,
    SurveyAnswer,
)
from workflows.nomination.models import (
    Appointment,
    Candidate,
    NominationDecision,
    NominationLetter,
    NominationSeat,
    ProposalException,
)
from workflows.registers.models import Meeting, Statement

RECURRING_TABLES = [Appointment, Candidate, NominationDecision, NominationLetter, NominationSeat, ProposalException,
                    AnnualReport, CycleReport, CycleSchedule, Measure, MeasureNote, NetworkMember, SurveyAnswer,
                    Meeting, Statement, CalendarFeed]
