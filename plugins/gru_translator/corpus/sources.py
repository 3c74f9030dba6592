"""The Debian sources of the corpus: which packages, read how, in which domain.

Catalogue sources group packages by family so that the per-source cap keeps any one
family (LibreOffice, GNOME, KDE, ...) from dominating the UI domain; the packages were
chosen by their measured number of translated German entries (``iso-codes`` is left out:
its entries are names of countries, languages and currencies, not text). Document
sources pair an English documentation package with its German translation and say how an
English page's path becomes the German page's path.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .catalogues import catalogue_pairs, is_catalogue
from .debian import DebPackage, check_allowed
from .documents import align_blocks, html_blocks
from .filters import Pair
from .sentences import align_sentences

DOC, UI, DING, BIBLE = "doc", "ui", "ding", "bible"
DOMAINS = (DOC, UI, DING, BIBLE)


@dataclass(frozen=True)
class CatalogueSource:
    """German gettext catalogues of some packages (the UI domain)."""

    name: str
    packages: tuple[str, ...]
    domain: str = UI

    def __post_init__(self) -> None:
        for package in self.packages:
            check_allowed(package)

    def pairs(self, debs: list[DebPackage]) -> Iterator[Pair]:
        """Sentence-aligned (english, german) pairs of every catalogue of ``debs``."""
        for deb in debs:
            for path, content in deb.members(is_catalogue):
                for pair in catalogue_pairs(content, path):
                    yield from align_sentences(pair)


@dataclass(frozen=True)
class DocumentSource:
    """English documentation pages and their German translations (the documentation domain).

    ``pages`` matches the English pages' paths in the ``english`` packages; ``german_page``
    (a ``re.sub`` replacement for ``pages``) gives the German page's path, looked up in the
    ``german`` packages (the same ones when a package ships both languages).
    """

    name: str
    english: tuple[str, ...]
    german: tuple[str, ...]
    pages: str
    german_page: str
    domain: str = DOC

    def __post_init__(self) -> None:
        for package in self.packages:
            check_allowed(package)

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.english + self.german))

    def german_path(self, english_path: str) -> str:
        return re.sub(self.pages, self.german_page, english_path)

    def pairs(self, debs: list[DebPackage]) -> Iterator[Pair]:
        """Sentence-aligned (english, german) pairs of every page that has a translation."""
        pages = re.compile(self.pages)
        english = {path: content for deb in debs if deb.name in self.english
                   for path, content in deb.members(lambda p: pages.fullmatch(p) is not None)}
        wanted = {self.german_path(path) for path in english}
        german = {path: content for deb in debs if deb.name in self.german
                  for path, content in deb.members(wanted.__contains__)}
        for path, content in sorted(english.items()):
            translation = german.get(self.german_path(path))
            if translation is None:
                continue
            blocks = align_blocks(html_blocks(_page_text(content, path)),
                                  html_blocks(_page_text(translation, path)))
            for pair in blocks:
                yield from align_sentences(pair)


def _page_text(content: bytes, path: str) -> str:
    """A page's text; KDE's rendered handbooks (``index.cache.bz2``) are bzip2-compressed."""
    return (bz2.decompress(content) if path.endswith(".bz2") else content).decode("utf-8", "replace")


Source = CatalogueSource | DocumentSource

#: KDE packages with German catalogues and a handbook in English and German.
KDE = ("plasma-workspace-data", "kmail", "kdepim-runtime", "kio", "okular", "dolphin", "konsole", "systemsettings",
       "gwenview", "ark", "kcalc", "kcharselect", "okteta", "kompare", "konqueror", "akregator", "korganizer",
       "kontact", "kleopatra", "kgpg", "juk", "elisa", "dragonplayer", "kmplot", "kig", "kturtle", "kwordquiz",
       "kbruch", "kanagram", "khangman", "blinken", "step", "cantor", "kfind", "krdc", "krfb", "kget", "kmag",
       "kmousetool", "kolourpaint", "kruler", "kdf", "kteatime", "ksystemlog", "partitionmanager", "filelight",
       "sweeper", "kwalletmanager", "kdeconnect", "kinfocenter", "kmenuedit", "khelpcenter", "kde-spectacle",
       "kmahjongg", "kpat", "ksudoku", "kmines", "knights", "kbounce", "kigo", "kiriki", "klickety")

#: GNOME packages with Mallard help pages in both C (English) and German, by page count.
GNOME_HELP = ("gnome-user-docs", "evolution-common", "evince-common", "shotwell-common", "gedit-common",
              "gnome-terminal-data", "gnome-calculator", "gnome-system-monitor", "totem-common", "meld", "file-roller",
              "cheese-common", "brasero-common", "simple-scan", "gnome-chess", "baobab", "gnome-text-editor")

CATALOGUES = (
    CatalogueSource("ui-libreoffice", ("libreoffice-l10n-de",)),
    CatalogueSource("ui-gnome", (
        "libgtk-3-common", "libgtk2.0-common", "libglib2.0-data", "gnome-shell-common", "gnome-control-center-data",
        "nautilus-data", "evolution-common", "evolution-data-server-common", "gedit-common", "rhythmbox-data",
        "totem-common", "gnome-software-common", "evince-common", "file-roller", "gnome-calculator", "gnome-maps",
        "shotwell-common", "gnome-builder", "gnome-disk-utility", "gnome-system-monitor", "gnome-terminal-data",
        "gnome-text-editor", "aisleriot", "gnome-chess", "simple-scan", "cheese-common", "baobab",
        "network-manager-gnome", "meld", "brasero-common")),
    CatalogueSource("ui-kde", ("krita-l10n", "digikam-data", *KDE)),
    CatalogueSource("ui-xfce-mate-cinnamon", (
        "xfce4-panel", "xfce4-settings", "xfwm4", "xfce4-session", "thunar-data", "mousepad", "ristretto",
        "xfdesktop4-data", "xfce4-power-manager-data", "caja-common", "pluma-common", "mate-desktop-common",
        "cinnamon-l10n", "pcmanfm")),
    CatalogueSource("ui-graphics", ("gimp-data", "inkscape", "blender-data", "darktable", "fontforge-common")),
    CatalogueSource("ui-applications", (
        "vlc-l10n", "gramps", "gnucash-common", "audacity-data", "gnumeric-common", "claws-mail-i18n",
        "sylpheed-i18n", "pidgin-data", "filezilla-common", "hexchat-common", "geany-common", "remmina-common",
        "poedit-common", "synaptic", "system-config-printer-common")),
    CatalogueSource("ui-system-tools", (
        "gcc-12-locales", "git", "util-linux-locales", "coreutils", "gnupg-l10n", "network-manager",
        "e2fsprogs-l10n", "libc-l10n", "grub-common", "dpkg", "apt", "binutils-common", "texinfo", "gettext", "wget",
        "nano", "tar", "make", "bison", "diffutils", "findutils", "sed", "debconf-i18n", "pulseaudio", "xkb-data")),
)

DOCUMENTS = (
    DocumentSource("doc-libreoffice-help", ("libreoffice-help-en-us",), ("libreoffice-help-de",),
                   r"usr/share/libreoffice/help/en-US/(text/.+\.html)", r"usr/share/libreoffice/help/de/\1"),
    DocumentSource("doc-gimp-help", ("gimp-help-en",), ("gimp-help-de",),
                   r"usr/share/gimp/2\.0/help/en/(.+\.html)", r"usr/share/gimp/2.0/help/de/\1"),
    DocumentSource("doc-gnome-help", GNOME_HELP, GNOME_HELP, r"usr/share/help/C/(.+\.page)", r"usr/share/help/de/\1"),
    DocumentSource("doc-kde-handbooks", (*KDE, "kwrite", "kaddressbook"), (*KDE, "kwrite", "kaddressbook"),
                   r"usr/share/doc/HTML/en/(.+/index\.cache\.bz2)", r"usr/share/doc/HTML/de/\1"),
    DocumentSource("doc-debian-reference", ("debian-reference-en",), ("debian-reference-de",),
                   r"usr/share/debian-reference/(\w+)\.en\.html", r"usr/share/debian-reference/\1.de.html"),
    DocumentSource("doc-debian-edu", ("debian-edu-doc-en",), ("debian-edu-doc-de",),
                   r"usr/share/doc/debian-edu-doc-en/(debian-edu-[\w-]+-manual)\.html",
                   r"usr/share/doc/debian-edu-doc-de/\1.html"),
)

SOURCES: tuple[Source, ...] = DOCUMENTS + CATALOGUES
