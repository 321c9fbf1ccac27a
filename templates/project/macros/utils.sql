{#- Macros here are available to every model. -#}

{% macro in_interval(column) -%}
{{ column }} >= {{ interval_start }} and {{ column }} < {{ interval_end }}
{%- endmacro %}
