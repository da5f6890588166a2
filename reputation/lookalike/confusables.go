package lookalike

// confusables maps a character to its prototype: the entries of Unicode's
// confusables.txt (UTS #39 §4, data file of Unicode 15/16) whose
// prototype is made of ASCII letters and digits, for the scripts that
// impersonations of Latin-script names and domains draw on (Latin
// extensions, Greek, Cyrillic, Armenian, Hebrew, Arabic, Cherokee,
// Georgian). Characters that NFKC already turns into ASCII (fullwidth
// forms, mathematical alphanumerics, ligatures, circled letters) are left
// out: the normaliser applies NFKC first. The entries were chosen and
// typed from the data's facts for this package; golang.org/x/text has no
// confusables table.
//
// The prototypes are case-sensitive, as in the data (I → l, 0 → O):
// folding comes after the mapping, so "BiII" and "Bill" meet.
var confusables = map[rune]string{
	// ASCII itself (UTS #39 maps these too).
	'0': "O", '1': "l", 'I': "l", '|': "l", 'm': "rn",

	// Latin extensions and IPA.
	'ı': "i", 'ɩ': "i", 'ɪ': "i", 'ǀ': "l", 'Ɩ': "l", 'ɑ': "a", 'ɡ': "g", 'ƍ': "g",
	'ɣ': "y", 'ʏ': "y", 'ɯ': "w", 'ʋ': "u", 'ƽ': "s", 'Ƅ': "b", 'Ʀ': "R",
	'Ƨ': "2", 'Ʒ': "3", 'Ȝ': "3", 'Ȣ': "8", 'ȣ': "8", 'Ƽ': "5",
	'æ': "ae", 'Æ': "AE", 'œ': "oe", 'Œ': "OE", '×': "x",

	// Greek.
	'Α': "A", 'Β': "B", 'Ε': "E", 'Ζ': "Z", 'Η': "H", 'Ι': "l", 'Κ': "K", 'Μ': "M",
	'Ν': "N", 'Ο': "O", 'Ρ': "P", 'Τ': "T", 'Υ': "Y", 'Χ': "X", 'Ϳ': "J",
	'α': "a", 'γ': "y", 'ι': "i", 'ν': "v", 'ο': "o", 'ρ': "p", 'σ': "o", 'υ': "u",
	'ϒ': "Y", 'Ϝ': "F", 'ϱ': "p", 'ϲ': "c", 'ϳ': "j", 'Ϲ': "C", 'Ϻ': "M",

	// Cyrillic.
	'А': "A", 'В': "B", 'Е': "E", 'З': "3", 'К': "K", 'М': "M", 'Н': "H", 'О': "O",
	'Р': "P", 'С': "C", 'Т': "T", 'У': "Y", 'Х': "X", 'Ы': "bl", 'Ь': "b", 'Ю': "lO",
	'Ѕ': "S", 'І': "l", 'Ј': "J", 'Ѵ': "V", 'Ү': "Y", 'Ӏ': "l", 'Ӕ': "AE", 'Ӡ': "3",
	'Ԍ': "G", 'Ԝ': "W",
	'а': "a", 'б': "6", 'г': "r", 'е': "e", 'о': "o", 'р': "p", 'с': "c", 'у': "y",
	'х': "x", 'ѕ': "s", 'і': "i", 'ј': "j", 'ѡ': "w", 'ѵ': "v", 'ү': "y", 'һ': "h",
	'ҽ': "e", 'ӏ': "i", 'ӕ': "ae", 'ԁ': "d", 'ԛ': "q", 'ԝ': "w",

	// Armenian.
	'Ս': "U", 'Տ': "S", 'Օ': "O", 'ա': "w", 'գ': "q", 'զ': "q", 'հ': "h", 'ո': "n",
	'ռ': "n", 'ս': "u", 'ց': "g", 'ք': "f", 'օ': "o",

	// Hebrew and Arabic letters and digits that pass for Latin ones.
	'ו': "l", 'ט': "v", 'ן': "l", 'ס': "o", 'ا': "l", 'ه': "o", '١': "l", '٥': "o", '٧': "V",

	// Cherokee.
	'Ꭰ': "D", 'Ꭱ': "R", 'Ꭲ': "T", 'Ꭵ': "i", 'Ꭹ': "Y", 'Ꭺ': "A", 'Ꭻ': "J", 'Ꭼ': "E",
	'Ꮃ': "W", 'Ꮇ': "M", 'Ꮋ': "H", 'Ꮍ': "Y", 'Ꮐ': "G", 'Ꮒ': "h", 'Ꮓ': "Z", 'Ꮞ': "4",
	'Ꮟ': "b", 'Ꮢ': "R",

	// Georgian, Myanmar, Ethiopic, Canadian syllabics, Lisu.
	'ყ': "y", 'ჿ': "o", '၀': "o", 'ሀ': "U", 'ዐ': "O", 'ᗅ': "A", 'ꓮ': "A",
}
