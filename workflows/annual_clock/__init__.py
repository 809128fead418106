"""The annual clock (vuosikello): the year's deadlines, meetings and windows as an SVG wheel and iCalendar feeds."""
