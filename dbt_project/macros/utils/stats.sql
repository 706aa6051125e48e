{#-
    Standard normal CDF from exp() alone (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7):
    neither DuckDB nor PostgreSQL 15 has erf().
-#}
{% macro normal_cdf(z) -%}
    (case when ({{ z }}) >= 0 then 1.0 else 0.0 end
     + (case when ({{ z }}) >= 0 then -1.0 else 1.0 end)
     * 0.5 * ({{ _erfc_poly('abs(' ~ z ~ ') / sqrt(2.0)') }}))
{%- endmacro %}

{% macro _erfc_poly(x) -%}
    (
        (1.0 / (1.0 + 0.3275911 * {{ x }})) * (0.254829592
        + (1.0 / (1.0 + 0.3275911 * {{ x }})) * (-0.284496736
        + (1.0 / (1.0 + 0.3275911 * {{ x }})) * (1.421413741
        + (1.0 / (1.0 + 0.3275911 * {{ x }})) * (-1.453152027
        + (1.0 / (1.0 + 0.3275911 * {{ x }})) * 1.061405429))))
        * exp(-({{ x }}) * ({{ x }}))
    )
{%- endmacro %}

{#- Division that yields null instead of an error (or infinity) on a zero or null denominator. -#}
{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as {{ dbt.type_float() }}) / nullif(cast({{ denominator }} as {{ dbt.type_float() }}), 0))
{%- endmacro %}

{#- Rounded double (numeric(38, 12) first: a bare numeric is DECIMAL(18,3) in DuckDB): KPI ratios are reported to 6 places, which also makes them comparable across engines. -#}
{% macro round_float(expr, places=6) -%}
    cast(round(cast({{ expr }} as decimal(38, 12)), {{ places }}) as {{ type_double() }})
{%- endmacro %}

{#-
    Wilson score bound of a proportion (x successes of n) at z standard normal units: side -1 the lower,
    +1 the upper. Unlike p +- z * se, it has width when x is 0 or n (the difference intervals are built on it).
-#}
{% macro wilson_bound(x, n, side, z=1.959964) -%}
    ((({{ safe_divide(x, n) }}) + {{ z }} * {{ z }} / (2.0 * ({{ n }}))
      {{ '-' if side < 0 else '+' }} {{ z }} * sqrt(
          ({{ safe_divide(x, n) }}) * (1 - ({{ safe_divide(x, n) }})) / ({{ n }})
          + {{ z }} * {{ z }} / (4.0 * ({{ n }}) * ({{ n }}))))
     / (1 + {{ z }} * {{ z }} / ({{ n }})))
{%- endmacro %}
