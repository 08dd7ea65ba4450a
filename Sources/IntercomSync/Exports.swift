// JSONValue is part of the engine's API (custom attributes, query values).
@_exported import IntercomJSON
