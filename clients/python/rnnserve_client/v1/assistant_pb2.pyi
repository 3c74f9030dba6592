from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SuggestionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUGGESTION_KIND_UNSPECIFIED: _ClassVar[SuggestionKind]
    SUGGESTION_KIND_WORD: _ClassVar[SuggestionKind]
    SUGGESTION_KIND_NEXT_WORDS: _ClassVar[SuggestionKind]
    SUGGESTION_KIND_PHRASE: _ClassVar[SuggestionKind]
SUGGESTION_KIND_UNSPECIFIED: SuggestionKind
SUGGESTION_KIND_WORD: SuggestionKind
SUGGESTION_KIND_NEXT_WORDS: SuggestionKind
SUGGESTION_KIND_PHRASE: SuggestionKind

class SuggestOptions(_message.Message):
    __slots__ = ("kinds", "max_suggestions", "max_phrase_chars")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_PHRASE_CHARS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[SuggestionKind]
    max_suggestions: int
    max_phrase_chars: int
    def __init__(self, kinds: _Optional[_Iterable[_Union[SuggestionKind, str]]] = ..., max_suggestions: _Optional[int] = ..., max_phrase_chars: _Optional[int] = ...) -> None: ...

class SuggestRequest(_message.Message):
    __slots__ = ("model", "text", "options")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    text: str
    options: SuggestOptions
    def __init__(self, model: _Optional[str] = ..., text: _Optional[str] = ..., options: _Optional[_Union[SuggestOptions, _Mapping]] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("text", "kind", "probability", "absolute_probability", "insert_text", "replace_chars")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    INSERT_TEXT_FIELD_NUMBER: _ClassVar[int]
    REPLACE_CHARS_FIELD_NUMBER: _ClassVar[int]
    text: str
    kind: SuggestionKind
    probability: float
    absolute_probability: float
    insert_text: str
    replace_chars: int
    def __init__(self, text: _Optional[str] = ..., kind: _Optional[_Union[SuggestionKind, str]] = ..., probability: _Optional[float] = ..., absolute_probability: _Optional[float] = ..., insert_text: _Optional[str] = ..., replace_chars: _Optional[int] = ...) -> None: ...

class SuggestResponse(_message.Message):
    __slots__ = ("model", "suggestions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    def __init__(self, model: _Optional[str] = ..., suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ...) -> None: ...

class SessionOpen(_message.Message):
    __slots__ = ("model", "options", "text")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    model: str
    options: SuggestOptions
    text: str
    def __init__(self, model: _Optional[str] = ..., options: _Optional[_Union[SuggestOptions, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class AppendText(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class DeleteText(_message.Message):
    __slots__ = ("chars",)
    CHARS_FIELD_NUMBER: _ClassVar[int]
    chars: int
    def __init__(self, chars: _Optional[int] = ...) -> None: ...

class ResetSession(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("open", "append", "delete", "reset")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    APPEND_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    open: SessionOpen
    append: AppendText
    delete: DeleteText
    reset: ResetSession
    def __init__(self, open: _Optional[_Union[SessionOpen, _Mapping]] = ..., append: _Optional[_Union[AppendText, _Mapping]] = ..., delete: _Optional[_Union[DeleteText, _Mapping]] = ..., reset: _Optional[_Union[ResetSession, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("session_id", "event_index", "suggestions", "document_chars")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_CHARS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    event_index: int
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    document_chars: int
    def __init__(self, session_id: _Optional[str] = ..., event_index: _Optional[int] = ..., suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ..., document_chars: _Optional[int] = ...) -> None: ...
