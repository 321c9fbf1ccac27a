{% macro cents_to_dollars(column) -%}
round({{ column }} / 100.0, 2)
{%- endmacro %}

{% macro in_interval(column) -%}
{{ column }} >= {{ interval_start }} and {{ column }} < {{ interval_end }}
{%- endmacro %}
