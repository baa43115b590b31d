"""The portal's filters print what they are given as text, never as markup."""

from rems.interfaces.portal.templatetags.portal import number


def test_a_number_is_printed_in_its_groups():
    assert str(number("PGQ1WJHKBHFD")) == (
        '<span class="number-groups"><span class="number-group">PGQ1W</span>'
        '<span class="number-group">JHKBH</span><span class="number-group">FD</span></span>')


def test_whatever_a_number_holds_is_escaped():
    printed = str(number('<script>"x"</script>&'))
    assert "<script>" not in printed and "&lt;script&gt;" in printed and "&amp;" in printed
